-- SPDX-License-Identifier: Apache-2.0
-- luring.async, the scheduler: run, spawn, join, cancel, sleep, now, timeout, queue and
-- ring, each row of ASYNC.md's "Tasks" table, against the real kernel. Timing checks
-- measure (lower bounds exact, upper bounds generous) so a loaded machine passes.
local luring = require "luring"
local async = require "luring.async"
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

local now = async.now

-- A value whose __close records that it ran.
local function closer(log, name)
  return setmetatable({}, { __close = function() log[#log + 1] = name end })
end

-- Runs `source` (Lua text) in a fresh interpreter; its exit status, stdout and stderr.
local function run_script(source)
  local script = helper.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(source)
  f:close()
  local out, err = helper.tmpname(), helper.tmpname()
  local _, _, code = os.execute(("%s >%s 2>%s"):format(helper.lua_command(script), out, err))
  return code, helper.slurp(out), helper.slurp(err)
end

-- ---- async.run ------------------------------------------------------------------------

case("run_results", function()
  -- fn's results, nils and their count included; arguments reach fn.
  local r = table.pack(async.run(function(a, b, c)
    assert(a == 1 and b == nil and c == "x")
    return 1, nil, "three", nil
  end, 1, nil, "x"))
  assert(r.n == 4 and r[1] == 1 and r[2] == nil and r[3] == "three" and r[4] == nil, r.n)
  assert(select("#", async.run(function() end)) == 0)
  -- Options as the first argument, or run{...}(fn, ...).
  assert(async.run({ entries = 8 }, function(x) return x * 2 end, 21) == 42)
  assert(async.run { entries = 16 }(function(x, y) return x + y end, 40, 2) == 42)
  assert(async.run({ entries = 4 }, function()
    return async.ring():in_flight()
  end) == 0)
  helper.raises("unknown option 'bogus'", async.run, { bogus = 1 }, function() end)
  helper.raises("bad argument #1 to 'run' (function expected, got nil)", async.run)
  helper.raises("bad argument #1 to 'run' (function expected, got number)", async.run, 5)
  helper.raises("function expected", async.run, { entries = 8 }, "nope")
end)

case("run_flags", function()
  -- The ring options reach queue_init: each setup mode runs the same small program
  -- (sleep, a socket echo, a timeout); a mode this kernel refuses is noted.
  local setup = luring.setup
  local modes = {
    { "CLAMP", setup.CLAMP }, { "COOP_TASKRUN", setup.COOP_TASKRUN },
    { "SINGLE_ISSUER|DEFER_TASKRUN", setup.SINGLE_ISSUER | setup.DEFER_TASKRUN },
    { "SQPOLL", setup.SQPOLL },
  }
  for _, m in ipairs(modes) do
    local ok, err = pcall(async.run, { entries = 32, flags = m[2] }, function()
      local t0 = now()
      async.sleep(0.01)
      assert(now() - t0 >= 0.01)
      local server = assert(async.listen("127.0.0.1", 0))
      local _, port = server:getsockname()
      local echo = async.spawn(function()
        local c = assert(server:accept())
        c:send(c:receive() .. "\n")
        c:close()
      end)
      local c = assert(async.connect("127.0.0.1", port))
      c:send("hello\n")
      assert(c:receive() == "hello")
      assert(async.timeout(0.01, function() return c:receive() end) == nil)
      c:close()
      assert(echo:join())
      server:close()
      return "done"
    end)
    if not ok and tostring(err):find("could not initialise queue", 1, true) then
      print("note: " .. m[1] .. ": " .. tostring(err))
    else
      assert(ok and err == "done", m[1] .. ": " .. tostring(err))
    end
  end
  helper.raises("entries must be between 1 and 32768", async.run, { entries = 0 }, function() end)
end)

-- Without flags the ring defers completion work to the loop's enters (DEFER_TASKRUN,
-- with SINGLE_ISSUER and TASKRUN_FLAG) where the probe says the kernel has it, and is
-- plain otherwise; flags = 0 asks for a plain ring.
case("run_default_flags", function()
  local setup = luring.setup
  local want = setup.SINGLE_ISSUER | setup.DEFER_TASKRUN | setup.TASKRUN_FLAG
  local supported = helper.setup_flags_supported()
  local got = async.run(function() return async.ring():setup_flags() end)
  if supported.defer_taskrun then
    assert(got == want, ("flags 0x%x"):format(got))
  else
    print("note: no DEFER_TASKRUN on this kernel: a plain ring")
    assert(got == 0, ("flags 0x%x"):format(got))
  end
  assert(async.run({ flags = 0 }, function() return async.ring():setup_flags() end) == 0)
  assert(async.run({ flags = setup.CLAMP }, function()
    return async.ring():setup_flags()
  end) == setup.CLAMP)
  helper.raises("unknown option 'recv_multishots'", async.run, { recv_multishots = true },
                function() end)
  -- The loop enters by a registered slot where the kernel has one (5.18; the unregister
  -- says 0 only for a registered ring), by the fd with register_ring = false.
  local unregistered = async.run(function() return async.ring():unregister_ring_fd() end)
  local probe = luring.queue_init(2, 0)
  if probe:register_ring_fd() == 0 then
    assert(unregistered == 0, unregistered)
  else
    print("note: no IORING_REGISTER_RING_FDS on this kernel: enters by the fd")
    assert(unregistered == -luring.errno.EINVAL, unregistered)
  end
  probe:close()
  assert(async.run({ register_ring = false }, function()
    return async.ring():unregister_ring_fd()
  end) == -luring.errno.EINVAL)
  -- A round's receives go after its sends (test_net receives_last), unless told not to.
  assert(async.run(function() return luring._receives_last(async.ring()) end) == true)
  assert(async.run({ receives_last = false }, function()
    return luring._receives_last(async.ring())
  end) == false)
end)

case("run_errors", function()
  -- A string error: raised again with its traceback.
  local ok, err = pcall(async.run, function() error("boom") end)
  assert(not ok and type(err) == "string")
  assert(err:find("test_async_tasks.lua:%d+: boom"), err)
  assert(err:find("stack traceback:", 1, true), err)
  -- From deeper inside, after waiting: the traceback names the function that failed.
  local function deep() async.sleep(0.001); error("deep trouble") end
  ok, err = pcall(async.run, function() deep() end)
  assert(not ok and err:find("deep trouble", 1, true) and err:find("'deep'", 1, true), err)
  assert(err:find("stack traceback:", 1, true), err)
  -- A table error: the same table.
  local value = { code = 7 }
  ok, err = pcall(async.run, function() error(value) end)
  assert(not ok and err == value)
  -- A nil error stays nil (as pcall has it).
  local r = table.pack(pcall(async.run, function() error(nil) end))
  assert(r[1] == false and r[2] == nil, tostring(r[2]))
  -- When fn fails, the other tasks are cancelled (they unwind, closing their <close>
  -- variables) and run raises fn's error once they all have ended.
  local log = {}
  local t0 = now()
  ok, err = pcall(async.run, function()
    async.spawn(function()
      local _ <close> = closer(log, "child closed")
      async.sleep(5)
      log[#log + 1] = "child not cancelled"
    end)
    async.spawn(function()
      local server = assert(async.listen("127.0.0.1", 0))
      server:accept()  -- a server that would wait forever
    end)
    async.sleep(0.01)
    error("main failed")
  end)
  assert(not ok and err:find("main failed", 1, true), err)
  assert(table.concat(log, ",") == "child closed", table.concat(log, ","))
  assert(now() - t0 < 2)
  -- A child's error does not make run fail when fn succeeded.
  assert(async.run({ on_error = function() end }, function()
    async.spawn(function() error("child") end)
    return "fine"
  end) == "fine")
end)

case("unjoined_error_on_error", function()
  local reports = {}
  local value = { why = "table error" }
  local r = async.run({ on_error = function(err, tb) reports[#reports + 1] = { err, tb } end },
    function()
      async.spawn(function() error("string error") end)
      async.spawn(function() async.sleep(0.001); error(value) end)
      async.spawn(function() error(nil) end)
      -- Joined failures and cancelled tasks are not reports.
      local joined = async.spawn(function() error("joined error") end)
      assert(joined:join() == false)
      local cancelled = async.spawn(function() async.sleep(10) end)
      async.sleep(0)
      cancelled:cancel()
      assert(select(2, cancelled:join()) == async.cancelled)
      async.sleep(0.01)
      return "main ok"
    end)
  assert(r == "main ok")
  assert(#reports == 3, #reports)
  local by_kind = {}
  for _, rep in ipairs(reports) do
    local err, tb = rep[1], rep[2]
    assert(type(tb) == "string" and tb:find("stack traceback:", 1, true), tostring(tb))
    if err == value then
      by_kind.table = true
      assert(tb:find("table", 1, true))
    elseif err == nil then
      by_kind["nil"] = true
      assert(tb:find("^nil"), tb)
    else
      assert(type(err) == "string" and err:find("string error", 1, true), tostring(err))
      assert(tb:find("test_async_tasks.lua:%d+: string error"), tb)
      by_kind.string = true
    end
  end
  assert(by_kind.table and by_kind["nil"] and by_kind.string)
end)

case("on_error_that_waits", function()
  -- An on_error handler may wait (here: it logs through an async file): run waits for
  -- it even when the failed task was the last one.
  local path = helper.tmpname()
  local log
  async.run({ on_error = function(err, tb)
    assert(log:write("reported: ", tostring(err):match("[^\n]*"), "\n"))
    async.sleep(0.02)
    assert(log:write(tb:find("stack traceback:", 1, true) and "with traceback\n" or "none\n"))
    log:close()
  end }, function()
    log = assert(async.open(path, "w"))
    async.spawn(function() async.sleep(0.01); error("late failure", 0) end)
  end)
  assert(helper.slurp(path) == "reported: late failure\nwith traceback\n", helper.slurp(path))
end)

case("unjoined_error_stderr", function()
  local code, out, err = run_script([[
    local async = require "luring.async"
    local r = async.run(function()
      async.spawn(function() async.sleep(0.001); error("kaboom") end)
      async.spawn(function() error({}) end)
      return "returned"
    end)
    print(r)
  ]])
  assert(code == 0, err)
  assert(out == "returned\n", out)
  local _, reports = err:gsub("a task failed and nobody joined it", "")
  assert(reports == 2, err)
  assert(err:find(":3: kaboom", 1, true) and err:find("stack traceback:", 1, true), err)
  assert(err:find("table: 0x", 1, true), err)
end)

case("nested_run", function()
  async.run(function()
    helper.raises("luring.async.run: already running (run does not nest)", async.run,
                  function() end)
    -- Nor from a spawned task.
    local t = async.spawn(function() return pcall(async.run, function() end) end)
    local ok, inner_ok, inner_err = t:join()
    assert(ok and inner_ok == false and inner_err:find("already running", 1, true))
  end)
  -- The loop is gone after run, whether it ended well or not: run works again.
  assert(async.run(function() return 1 end) == 1)
  assert(not pcall(async.run, function() error("x") end))
  assert(async.run(function() async.sleep(0.001); return 2 end) == 2)
end)

-- ---- spawn ------------------------------------------------------------------------------

case("spawn_next_point", function()
  async.run(function()
    local log = {}
    local t = async.spawn(function(a, b)
      log[#log + 1] = "child " .. a .. b
      return "r"
    end, "x", "y")
    log[#log + 1] = "after spawn"
    assert(#log == 1, "the task ran inside spawn")
    assert(tostring(t):find("luring.async.task", 1, true))
    async.sleep(0)
    assert(log[2] == "child xy", tostring(log[2]))
    assert(select(2, t:join()) == "r")
    -- Tasks start in the order they were spawned, all at the next scheduling point.
    local order = {}
    for k = 1, 5 do async.spawn(function() order[#order + 1] = k end) end
    assert(#order == 0)
    async.sleep(0)
    assert(table.concat(order, ",") == "1,2,3,4,5", table.concat(order, ","))
    -- A spawned task that spawns: its child too waits for the next point.
    local inner_ran = false
    local outer = async.spawn(function()
      async.spawn(function() inner_ran = true end)
      return inner_ran
    end)
    local _, seen = outer:join()
    assert(seen == false)
    async.sleep(0)
    assert(inner_ran)
    helper.raises("bad argument #1 to 'spawn' (function expected, got number)", async.spawn, 1)
    -- A callable table is a function.
    local callable = setmetatable({}, { __call = function(_, v) return v end })
    assert(select(2, async.spawn(callable, 5):join()) == 5)
  end)
  helper.raises("spawn: not inside luring.async.run", async.spawn, function() end)
end)

-- ---- join ----------------------------------------------------------------------------

case("join", function()
  async.run({ on_error = function() end }, function()
    local t = async.spawn(function() async.sleep(0.01); return 1, nil, 3 end)
    local r = table.pack(t:join())
    assert(r.n == 4 and r[1] == true and r[2] == 1 and r[3] == nil and r[4] == 3)
    -- Again, once finished: the same results at once.
    r = table.pack(t:join())
    assert(r.n == 4 and r[1] == true and r[4] == 3)
    assert(async.join(t) == true)
    -- Errors, pcall style.
    local value = {}
    local ok, err = async.spawn(function() error(value) end):join()
    assert(ok == false and err == value)
    ok, err = async.spawn(function() async.sleep(0.001); error("failed here") end):join()
    assert(ok == false and err:find("failed here", 1, true))
    ok, err = async.spawn(function() error(nil) end):join()
    assert(ok == false and err == nil)
    -- A timeout: nil, "timeout" when it passes first; the task goes on.
    local slow = async.spawn(function() async.sleep(0.15); return "late" end)
    local t0 = now()
    r = table.pack(slow:join(0.03))
    local waited = now() - t0
    assert(r.n == 2 and r[1] == nil and r[2] == "timeout", tostring(r[1]))
    assert(waited >= 0.03 and waited < 0.12, waited)
    assert(slow:status() == "running")
    -- join(0) does not wait at all.
    assert(select(2, slow:join(0)) == "timeout")
    local okk, v = slow:join()
    assert(okk == true and v == "late")
    -- Several joiners all wake.
    local target = async.spawn(function() async.sleep(0.02); return "shared" end)
    local joiners = {}
    for k = 1, 3 do
      joiners[k] = async.spawn(function() return select(2, target:join()) end)
    end
    for k = 1, 3 do assert(select(2, joiners[k]:join()) == "shared") end
    -- A negative timeout waits without limit.
    assert(async.spawn(function() async.sleep(0.01); return 9 end):join(-1) == true)
    helper.raises("join: a task cannot join itself", function()
      local me
      me = async.spawn(function() return me:join() end)
      local okm, e = me:join()
      assert(not okm)
      error(e, 0)
    end)
  end)
  local t
  async.run(function() t = async.spawn(function() end) end)
  helper.raises("join: not inside luring.async.run", t.join, t)
end)

-- ---- cancel ------------------------------------------------------------------------------

case("cancel_in_kernel", function()
  async.run(function()
    local ring = async.ring()
    local reached = false
    local t = async.spawn(function()
      async.sleep(5)
      reached = true
    end)
    async.sleep(0.02)
    assert(ring:in_flight() >= 1, "the sleep is not a kernel request")
    local t0 = now()
    t:cancel()
    assert(t:status() == "cancelling")
    local ok, err = t:join()
    assert(ok == false and err == async.cancelled, tostring(err))
    assert(now() - t0 < 1, "cancel waited for the timeout")
    assert(not reached)
    assert(tostring(async.cancelled):find("cancelled", 1, true))
    assert(t:status() == "done")
    -- The kernel request is gone: nothing of the task is left in flight.
    async.sleep(0)
    assert(ring:in_flight() == 0, ring:in_flight())
    -- Cancelling waits that are not kernel requests: a queue get, a join.
    local q = async.queue()
    local getter = async.spawn(function() return q:get() end)
    local joiner = async.spawn(function() return t:join() and getter:join() end)
    async.sleep(0)
    getter:cancel()
    assert(select(2, getter:join()) == async.cancelled)
    local blocker = async.spawn(function() async.sleep(5) end)
    local joiner2 = async.spawn(function() return blocker:join() end)
    async.sleep(0)
    joiner2:cancel()
    assert(select(2, joiner2:join()) == async.cancelled)
    blocker:cancel()
    assert(select(2, blocker:join()) == async.cancelled)
    assert(joiner:join() == true)
    -- The queue lost no value to the cancelled getter.
    q:put("v")
    assert(q:get(0) == "v")
    -- A task can cancel itself: its next wait raises.
    local selfish
    selfish = async.spawn(function()
      selfish:cancel()
      async.sleep(5)
      return "not reached"
    end)
    t0 = now()
    assert(select(2, selfish:join()) == async.cancelled)
    assert(now() - t0 < 1)
  end)
end)

case("cancel_completion_queued", function()
  -- B and A read a file; both reads complete at the same submit, B's first. B's task,
  -- resumed by its completion, cancels A while A's completion is already in the CQ but
  -- not yet dispatched: A wakes once, at that completion, and its read raises. (Reads of
  -- cached pages complete inline; the case is tried until that was seen.)
  local path = helper.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("0123456789")
  f:close()
  async.run(function()
    local ring = async.ring()
    local file = assert(async.open(path))
    local seen = 0
    for _ = 1, 50 do
      local a, a_after = nil, false
      local queued = false
      local b = async.spawn(function()
        assert(file:read_at(4, 0) == "0123")
        -- A's completion: ready in the ring (or taken into the dispatch batch), not seen.
        -- (A waits by the fast path: the ring notes its request, not the task table.)
        local pending = a.pending or luring._task_pending(ring, a.co)
        assert(pending ~= nil and a:status() == "running", "A's request is not pending")
        queued = ring:wait(0, 0) >= 1
        a:cancel()
      end)
      a = async.spawn(function()
        file:read_at(4, 4)
        a_after = true
      end)
      local ok, err = a:join()
      assert(ok == false and err == async.cancelled, tostring(err))
      assert(not a_after, "A went on after it was cancelled")
      assert(b:join() == true)
      if queued then seen = seen + 1 end
      if seen >= 5 then break end
    end
    assert(seen >= 1, "A's completion was never already queued: the case did not happen")
    file:close()
    async.sleep(0)
    assert(ring:in_flight() == 0)
  end)
end)

case("cancel_finished_and_unstarted", function()
  local ran = false
  async.run(function()
    -- After it finished: nothing changes.
    local t = async.spawn(function() return "result" end)
    assert(select(2, t:join()) == "result")
    t:cancel()
    local ok, v = t:join()
    assert(ok == true and v == "result")
    -- Before it ever ran: its function never runs.
    local never = async.spawn(function() ran = true end)
    never:cancel()
    never:cancel()  -- twice is the same
    ok, v = never:join()
    assert(ok == false and v == async.cancelled)
    async.sleep(0.01)
  end)
  assert(not ran)
end)

case("close_on_cancel_and_timeout", function()
  local log = {}
  async.run(function()
    local t = async.spawn(function()
      local _ <close> = closer(log, "a")
      do
        local _ <close> = closer(log, "b")
        async.sleep(5)
      end
    end)
    async.sleep(0.01)
    t:cancel()
    assert(select(2, t:join()) == async.cancelled)
    assert(table.concat(log, ",") == "b,a", table.concat(log, ","))
    -- A timeout unwinds the same way, in the calling task, which goes on.
    log = {}
    local t0 = now()
    local r = table.pack(async.timeout(0.03, function()
      local _ <close> = closer(log, "c")
      async.sleep(5)
      return "not reached"
    end))
    assert(r.n == 2 and r[1] == nil and r[2] == "timeout")
    assert(table.concat(log, ",") == "c")
    assert(now() - t0 < 1)
    -- A socket held in a <close> variable is closed by the unwinding.
    local server = assert(async.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    local client
    local holder = async.spawn(function()
      local s <close> = assert(async.connect("127.0.0.1", port))
      client = s
      s:receive()  -- waits forever
    end)
    local peer = assert(server:accept())
    async.sleep(0.01)
    holder:cancel()
    holder:join()
    assert(client.closed)
    peer:settimeout(1)
    local data, err = peer:receive()
    assert(data == nil and err == "closed", tostring(err))
    peer:close()
    server:close()
  end)
end)

case("no_double_resume", function()
  -- Cancels and timeouts end waits whose completions then still arrive (-ECANCELED) or
  -- were already queued; none may resume a task a second time, nor end a later wait.
  async.run(function()
    local path = helper.tmpname()
    local file = assert(async.open(path, "w+"))
    assert(file:write("abcdefgh"))
    for _ = 1, 20 do
      -- A timeout scope that ends in a queue wait, then a kernel sleep in the same task:
      -- the sleep must last its whole time.
      local r = table.pack(async.timeout(0.001, function() async.sleep(1) end))
      assert(r[1] == nil and r[2] == "timeout")
      local t0 = now()
      async.sleep(0.02)
      local slept = now() - t0
      assert(slept >= 0.02, "a stale completion ended a later sleep: " .. slept)
      -- A read raced by a cancel from another task, then the same task's next read.
      local victim = async.spawn(function()
        local ok = pcall(file.read_at, file, 4, 0)
        assert(not ok)
        return "done"
      end)
      async.spawn(function() victim:cancel() end)
      local ok, err = victim:join()
      assert(ok == false and err == async.cancelled or ok == true, tostring(err))
    end
    -- Every task ended exactly once: a long sleeper started last still counts as
    -- alive, so run cannot return before it finishes.
    file:close()
  end)
  local finished = false
  async.run(function()
    local sleeper = async.spawn(function() async.sleep(0.1); finished = true end)
    for _ = 1, 50 do
      local t = async.spawn(function() async.sleep(1) end)
      async.sleep(0)
      t:cancel()
      t:cancel()
      t:join()
      async.timeout(0, function() async.sleep(1) end)
    end
    assert(sleeper)
  end)
  assert(finished, "run returned while a task was still sleeping")
end)

-- ---- sleep and now -------------------------------------------------------------------

case("sleep_is_a_kernel_timeout", function()
  async.run(function()
    local ring = async.ring()
    local in_flight = -1
    async.spawn(function() in_flight = ring:in_flight() end)
    local t0, c0 = now(), os.clock()
    async.sleep(0.05)
    local wall, cpu = now() - t0, os.clock() - c0
    assert(wall >= 0.05, wall)
    assert(wall < 0.3, wall)
    assert(in_flight >= 1, "nothing was in the kernel while sleeping")
    -- A busy loop would burn the whole time on the CPU.
    t0, c0 = now(), os.clock()
    async.sleep(0.2)
    wall, cpu = now() - t0, os.clock() - c0
    assert(wall >= 0.2 and cpu < 0.05, ("wall %.3f cpu %.3f"):format(wall, cpu))
    -- sleep(0) and sleep() yield to the other ready tasks, in turn.
    local log = {}
    local function worker(name)
      for k = 1, 3 do
        log[#log + 1] = name .. k
        async.sleep(0)
      end
    end
    local a, b = async.spawn(worker, "a"), async.spawn(worker, "b")
    a:join()
    b:join()
    assert(table.concat(log, " ") == "a1 b1 a2 b2 a3 b3", table.concat(log, " "))
    local yielded = false
    async.spawn(function() yielded = true end)
    async.sleep()
    assert(yielded)
    -- A task that spins with sleep(0) does not starve one waiting for the kernel.
    local stop = false
    local spins = 0
    local spinner = async.spawn(function()
      while not stop do spins = spins + 1; async.sleep(0) end
    end)
    t0 = now()
    async.sleep(0.05)
    stop = true
    spinner:join()
    assert(now() - t0 < 0.5 and spins > 10, spins)
    helper.raises("bad argument #1 to 'sleep' (number expected, got string)", async.sleep, "1")
  end)
end)

case("now", function()
  local a = async.now()
  local b = luring.now()
  assert(type(a) == "number" and math.abs(b - a) < 0.5)
  async.run(function()
    local prev = async.now()
    for _ = 1, 100 do
      local t = async.now()
      assert(t >= prev)
      prev = t
    end
    local t0 = async.now()
    async.sleep(0.02)
    assert(async.now() - t0 >= 0.02)
  end)
end)

-- ---- async.timeout ---------------------------------------------------------------------------

case("timeout", function()
  async.run(function()
    -- In time: fn's results, all of them.
    local r = table.pack(async.timeout(1, function(x) async.sleep(0.001); return x, nil end, 5))
    assert(r.n == 2 and r[1] == 5 and r[2] == nil)
    -- Not in time: nil, "timeout", at the deadline.
    local t0 = now()
    r = table.pack(async.timeout(0.05, function() async.sleep(2); return "late" end))
    local took = now() - t0
    assert(r.n == 2 and r[1] == nil and r[2] == "timeout")
    assert(took >= 0.05 and took < 0.5, took)
    async.sleep(0)
    assert(async.ring():in_flight() == 0, "the timed-out sleep is still in the kernel")
    -- Nested: the inner deadline passes first; the outer goes on.
    local log = {}
    r = table.pack(async.timeout(1, function()
      local a, b = async.timeout(0.02, function() async.sleep(2) end)
      log[#log + 1] = tostring(a) .. "," .. tostring(b)
      async.sleep(0.01)
      return "outer done"
    end))
    assert(r[1] == "outer done" and log[1] == "nil,timeout", tostring(log[1]))
    -- Nested: the outer deadline passes first; the inner never returns.
    log = {}
    t0 = now()
    r = table.pack(async.timeout(0.03, function()
      local a = async.timeout(2, function() async.sleep(2); return "inner" end)
      log[#log + 1] = "inner returned " .. tostring(a)
    end))
    assert(r[1] == nil and r[2] == "timeout" and #log == 0, log[1])
    assert(now() - t0 < 1)
    -- Three levels, the middle one first.
    r = table.pack(async.timeout(2, function()
      local m1, m2 = async.timeout(0.02, function()
        async.timeout(3, function() async.sleep(3) end)
        return "middle not reached"
      end)
      return "top", m1, m2
    end))
    assert(r[1] == "top" and r[2] == nil and r[3] == "timeout")
    -- Errors go through unchanged; a scope that ended leaves nothing behind.
    local value = {}
    local ok, err = pcall(async.timeout, 1, function() error(value) end)
    assert(not ok and err == value)
    ok, err = pcall(async.timeout, 1, function() error("plain", 0) end)
    assert(not ok and err == "plain")
    t0 = now()
    async.sleep(0.06)  -- the deadlines above (1 s, 2 s) must not fire in here
    assert(now() - t0 >= 0.06)
    -- A wait that is not a kernel request, and a task that only yields.
    local q = async.queue()
    r = table.pack(async.timeout(0.02, function() return q:get() end))
    assert(r[1] == nil and r[2] == "timeout")
    local spins = 0
    r = table.pack(async.timeout(0.02, function()
      while true do spins = spins + 1; async.sleep(0) end
    end))
    assert(r[1] == nil and r[2] == "timeout" and spins > 0)
    -- Zero and negative: the first wait ends it.
    r = table.pack(async.timeout(0, function() async.sleep(1) end))
    assert(r[1] == nil and r[2] == "timeout")
    -- fn that never waits returns normally.
    assert(async.timeout(0, function() return "quick" end) == "quick")
    helper.raises("bad argument #1 to 'timeout' (number expected, got nil)", async.timeout, nil,
                  function() end)
  end)
end)

case("timeout_under_load", function()
  -- 200 busy tasks (nops through the callback API, sleep(0), file and socket I/O) while
  -- one task measures how late its timeouts and sleeps fire. Scheduling noise of a
  -- loaded machine hits single samples: the median must be within 50 ms, or within three
  -- of the loop's rounds where a round takes longer (200 tasks under QEMU's emulation
  -- on a busy host: a deadline is noticed at the end of the round it passes in), or
  -- within twice the longest round seen while it waited (a task beside it times each
  -- round: an emulated guest stalls now and then for tens of milliseconds, and a
  -- deadline that passes in such a round is noticed at its end). A loop that let ready
  -- tasks starve its timers would be seconds late either way.
  local path = helper.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(string.rep("x", 4096))
  f:close()
  async.run({ entries = 256 }, function()
    local stop = false
    local work = 0
    local busy = {}
    local file = assert(async.open(path))
    local server = assert(async.listen("127.0.0.1", 0, 256))
    local _, port = server:getsockname()
    local echo = async.spawn(function()
      local conns = {}
      for k = 1, 50 do
        local c = assert(server:accept())
        conns[k] = async.spawn(function()
          while true do
            local line = c:receive()
            if not line then break end
            c:send(line .. "\n")
          end
          c:close()
        end)
      end
      for _, t in ipairs(conns) do t:join() end
    end)
    for k = 1, 200 do
      local kind = k % 4
      busy[k] = async.spawn(function()
        local ring = async.ring()
        local sock = kind == 3 and assert(async.connect("127.0.0.1", port)) or nil
        while not stop do
          if kind == 0 then
            async.sleep(0)
          elseif kind == 1 then
            local done = false
            ring:nop(function() done = true end)
            while not done do async.sleep(0) end
          elseif kind == 2 then
            assert(#file:read_at(4096, 0) == 4096)
          else
            sock:send("ping\n")
            assert(sock:receive() == "ping")
          end
          work = work + 1
        end
        if sock then sock:close() end
      end)
    end
    async.sleep(0.05)
    local late_timeout, late_sleep, round, longest = {}, {}, {}, {}
    for k = 1, 7 do
      local t0 = now()
      async.sleep(0)  -- one round of the loop
      round[k] = now() - t0
      local timing, most = true, 0
      local meter = async.spawn(function()
        local last = now()
        while timing do
          async.sleep(0)
          local t = now()
          if t - last > most then most = t - last end
          last = t
        end
      end)
      t0 = now()
      local r = async.timeout(0.1, function() async.sleep(10) end)
      assert(r == nil)
      late_timeout[k] = now() - t0 - 0.1
      t0 = now()
      async.sleep(0.05)
      late_sleep[k] = now() - t0 - 0.05
      assert(late_timeout[k] >= 0 and late_sleep[k] >= 0)
      timing = false
      meter:join()
      longest[k] = most
    end
    stop = true
    for _, t in ipairs(busy) do assert(t:join()) end
    echo:join()
    file:close()
    server:close()
    table.sort(late_timeout)
    table.sort(late_sleep)
    table.sort(round)
    table.sort(longest)
    local bound = math.max(0.05, 3 * round[4], 2 * longest[4])
    local msg = ("timeout lateness %s; sleep lateness %s; rounds %s; longest rounds while "
                 .. "waiting %s; work %d"):format(table.concat(late_timeout, " "),
      table.concat(late_sleep, " "), table.concat(round, " "), table.concat(longest, " "), work)
    assert(work > 2000, msg)
    assert(late_timeout[4] < bound and late_sleep[4] < bound, msg)
  end)
end)

case("timer_heap", function()
  -- Deadlines of queue waits, joins and scopes live in one heap: 1500 waits with random
  -- deadlines, a fifth of them ended early (removed from the middle of the heap), wake
  -- never before their deadline, and the queue and join waits in deadline order (their
  -- deadline read back from the heap's record, task.wait_timer.at, so that a pause of
  -- this process between now() here and there cannot blur it).
  math.randomseed(1234)
  async.run(function()
    local woke = {}
    local tasks = {}
    local early = {}
    for k = 1, 1500 do
      local q = async.queue()
      local wait = math.random() * 0.2
      local kind = k % 3
      tasks[k] = async.spawn(function()
        local me = tasks[k]
        local t0 = now()
        if kind == 0 then
          local v = q:get(wait)
          if v then return "early" end
        elseif kind == 1 then
          local blocker = async.spawn(function() return q:get() end)
          local ok = blocker:join(wait)
          if ok then return "early" end
          blocker:cancel()
        else
          local r = async.timeout(wait, function() return q:get() end)
          if r then return "early" end
        end
        local t = now()
        assert(t >= t0 + wait - 1e-6, ("woke %.6f s early"):format(t0 + wait - t))
        if kind ~= 2 then
          local at = me.wait_timer.at
          assert(t >= at and at >= t0 + wait - 1e-6)
          woke[#woke + 1] = at
        end
        return "timeout"
      end)
      if k % 5 == 0 then early[#early + 1] = q end
    end
    async.sleep(0.05)
    for _, q in ipairs(early) do q:put("value") end
    local timeouts = 0
    for k = 1, #tasks do
      local ok, how = tasks[k]:join()
      assert(ok, how)
      if how == "timeout" then timeouts = timeouts + 1 end
    end
    assert(timeouts > 1000 and #woke > 700, timeouts)
    for k = 2, #woke do
      assert(woke[k] >= woke[k - 1], ("woken out of order at %d: %.6f after %.6f")
        :format(k, woke[k], woke[k - 1]))
    end
  end)
end)

-- ---- queue ------------------------------------------------------------------------------

case("queue", function()
  async.run(function()
    local q = async.queue()
    assert(#q == 0)
    q:put(1)
    q:put("two")
    q:put(false)
    assert(#q == 3)
    assert(q:get() == 1 and q:get() == "two" and q:get() == false)
    assert(#q == 0)
    -- A getter waits for a putter, in FIFO order of values and of getters.
    local got = {}
    local getters = {}
    for k = 1, 3 do getters[k] = async.spawn(function() got[k] = q:get() end) end
    async.sleep(0)
    assert(#got == 0)
    q:put("a")
    q:put("b")
    q:put("c")
    for k = 1, 3 do getters[k]:join() end
    assert(table.concat(got, ",") == "a,b,c", table.concat(got, ","))
    -- get timeout: nil, "timeout", at the deadline; get(0) does not wait.
    local t0 = now()
    local r = table.pack(q:get(0.03))
    assert(r.n == 2 and r[1] == nil and r[2] == "timeout")
    assert(now() - t0 >= 0.03 and now() - t0 < 0.5)
    assert(select(2, q:get(0)) == "timeout")
    -- A value put after a getter timed out stays for the next get.
    q:put("kept")
    assert(q:get(0) == "kept")
    -- Bounded: put waits while full.
    local b = async.queue(2)
    b:put(1)
    b:put(2)
    local put_done = false
    local putter = async.spawn(function() b:put(3); put_done = true end)
    async.sleep(0.01)
    assert(not put_done and #b == 2)
    assert(b:get() == 1)
    putter:join()
    assert(put_done and #b == 2)
    assert(b:get() == 2 and b:get() == 3)
    -- Many producers and consumers through a small queue: every value once.
    local small = async.queue(3)
    local seen, tasks = {}, {}
    for p = 1, 5 do
      tasks[#tasks + 1] = async.spawn(function()
        for k = 1, 100 do small:put(p * 1000 + k); if k % 7 == 0 then async.sleep(0) end end
      end)
    end
    local count = 0
    for _ = 1, 4 do
      tasks[#tasks + 1] = async.spawn(function()
        while true do
          local v = small:get(0.2)
          if v == nil then break end
          assert(not seen[v], "value twice")
          seen[v] = true
          count = count + 1
        end
      end)
    end
    for _, t in ipairs(tasks) do assert(t:join()) end
    assert(count == 500, count)
    -- A getter cancelled after a put woke it hands the value on to the next getter.
    local q2 = async.queue()
    local first = async.spawn(function() return q2:get() end)
    local second = async.spawn(function() return q2:get(1) end)
    async.sleep(0)
    q2:put("x")
    first:cancel()
    assert(select(2, first:join()) == async.cancelled)
    local ok, v = second:join()
    assert(ok and v == "x", "a value was lost with a cancelled getter: " .. tostring(v))
    -- The same for a bounded queue's putters.
    local q3 = async.queue(1)
    q3:put("full")
    local p1 = async.spawn(function() q3:put("p1") end)
    local p2 = async.spawn(function() q3:put("p2") end)
    async.sleep(0)
    assert(q3:get() == "full")
    p1:cancel()
    assert(select(2, p1:join()) == async.cancelled)
    assert(p2:join(1) == true, "a putter was not woken after another was cancelled")
    assert(q3:get(0) == "p2")
    helper.raises("bad argument #1 to 'queue'", async.queue, 0)
    helper.raises("bad argument #1 to 'queue'", async.queue, 1.5)
  end)
  -- A queue works from outside a task as long as nothing waits.
  local q = async.queue()
  q:put(1)
  assert(#q == 1)
  helper.raises("get: not inside luring.async.run", q.get, async.queue())
end)

-- ---- errors outside a task ---------------------------------------------------------------

case("not_inside_run", function()
  local readable = helper.tmpname()
  local blocking = {
    { "sleep", function() async.sleep(0.01) end },
    { "sleep", function() async.sleep(0) end },
    { "timeout", function() async.timeout(1, function() end) end },
    { "get", function() async.queue():get() end },
    { "put", function() local q = async.queue(1); q:put(1); q:put(2) end },
    { "open", function() async.open(readable) end },
    { "stat", function() async.stat("/") end },
    { "remove", function() async.remove("/nonexistent") end },
    { "rename", function() async.rename("/nonexistent", "/nonexistent2") end },
    { "mkdir", function() async.mkdir("/nonexistent/x") end },
    { "connect", function() async.connect("127.0.0.1", 1) end },
    { "bind", function() async.listen("127.0.0.1", 0) end },
    { "connect_unix", function() async.connect_unix("/nonexistent") end },
    { "bind", function() async.listen_unix("/nonexistent/x") end },
    { "ring", function() async.ring() end },
    { "spawn", function() async.spawn(function() end) end },
  }
  for _, b in ipairs(blocking) do
    helper.raises(b[1] .. ": not inside luring.async.run", b[2])
  end
  -- An object made in one run, used after it ended.
  local sock
  async.run(function() sock = async.tcp() end)
  helper.raises("receive: not inside luring.async.run", sock.receive, sock)
  helper.raises("send: not inside luring.async.run", sock.send, sock, "x")
  helper.raises("accept: not inside luring.async.run", sock.accept, sock)
end)

case("cancel_after_failed_run", function()
  -- A task left waiting when run failed can still be cancelled (nothing to do: its ring
  -- is gone), outside run and inside a later one.
  -- (An on_error handler that raises ends run at once, cancelling nothing.)
  local sleeper
  local ok = pcall(async.run, { on_error = function() error("handler fails") end }, function()
    sleeper = async.spawn(function() async.sleep(10) end)
    async.spawn(function() error("a task fails") end)
    async.sleep(5)
  end)
  assert(not ok)
  assert(sleeper:status() == "running")
  sleeper:cancel()
  async.run(function()
    sleeper:cancel()
    async.sleep(0.001)
  end)
end)

case("nested_coroutine", function()
  local readable = helper.tmpname()
  async.run(function()
    local msg = "not inside a task of luring.async.run (a nested coroutine cannot wait)"
    local co = coroutine.wrap(function() async.sleep(0.01) end)
    helper.raises("sleep: " .. msg, co)
    local q = async.queue()
    helper.raises("get: " .. msg, coroutine.wrap(function() q:get() end))
    local t = async.spawn(function() end)
    helper.raises("join: " .. msg, coroutine.wrap(function() t:join() end))
    helper.raises("open: " .. msg, coroutine.wrap(function() async.open(readable) end))
    -- The waits of luring._await's fast path too.
    local f = assert(async.open(readable, "w+"))
    helper.raises("read_at: " .. msg, coroutine.wrap(function() f:read_at(1, 0) end))
    helper.raises("write_at: " .. msg, coroutine.wrap(function() f:write_at("x", 0) end))
    local server = assert(async.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    local sa = assert(async.connect("127.0.0.1", port))
    helper.raises("receive: " .. msg, coroutine.wrap(function() sa:receive(1) end))
    helper.raises("send: " .. msg, coroutine.wrap(function() sa:send("x") end))
    sa:close()
    server:close()
    assert(async.ring():in_flight() == 0, "a request was queued for a coroutine that cannot wait")
    f:close()
    -- The task itself is unharmed.
    async.sleep(0.001)
    -- A callback of the callback API is not a task either.
    local err
    async.ring():nop(function()
      local ok, e = pcall(async.sleep, 0.01)
      err = not ok and e
    end)
    async.sleep(0.01)
    assert(err and err:find("sleep: not inside a task", 1, true), tostring(err))
  end)
end)

-- A task inside a C function that called Lua back (a sort comparator) cannot yield:
-- a wait there raises before anything is queued, so no completion later resumes a
-- coroutine that is not waiting for it, and the task goes on.
case("wait_inside_c_call", function()
  local path = helper.tmpname()
  local w = assert(io.open(path, "w"))
  w:write("abc")
  w:close()
  async.run(function()
    local f = assert(async.open(path))
    for _, wait in ipairs({
      function() return f:read_at(1, 0) end,
      function() return f:write_at("x", 5) end,
      function() return f:read(1) end,
      function() return async.stat(path) end,
    }) do
      local ok, err = pcall(table.sort, { 2, 1 }, function(a, b)
        wait()
        return a < b
      end)
      assert(not ok and tostring(err):find("C%-call boundary"), tostring(err))
      assert(async.ring():in_flight() == 0, "a request was queued: " .. tostring(err))
    end
    assert(f:read_at(3, 0) == "abc")
    f:close()
  end)
end)

-- ---- async.ring --------------------------------------------------------------------------

case("ring_mix", function()
  async.run(function()
    local ring = async.ring()
    assert(tostring(ring):find("ring", 1, true))
    -- A raw callback request inside a task.
    local got
    assert(ring:nop(function(cqe, res) got = { cqe, res } end))
    async.sleep(0.01)
    assert(got and got[2] == 0)
    -- A raw timeout whose callback wakes a task through a queue.
    local q = async.queue()
    local t0 = now()
    assert(ring:timeout(0.02, 0, nil, function(_, res) q:put(res) end))
    assert(q:get() == -luring.errno.ETIME)
    assert(now() - t0 >= 0.02)
    -- A callback that spawns a task.
    local spawned = async.queue()
    ring:nop(function() async.spawn(function() spawned:put("from callback") end) end)
    assert(spawned:get(1) == "from callback")
    -- A raw request still in flight when the task loop has nothing else: run waits for
    -- the tasks, not for it, and the ring's close reaps it.
  end)
  -- The loop ends with nothing of the callback API pending either way.
  local kept
  async.run(function() kept = async.ring() end)
  assert(not pcall(kept.nop, kept, function() end), "the ring is still open after run")
end)

-- ---- run ends when every task ended, releasing what it made ------------------------------

case("run_releases", function()
  local base = helper.fd_count()
  local order = {}
  async.run(function()
    async.spawn(function() async.sleep(0.05); order[#order + 1] = "child" end)
    -- Sockets and files nobody closed.
    local server = assert(async.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    async.spawn(function() local c = server:accept(); order[#order + 1] = c and "accepted" end)
    local c = assert(async.connect("127.0.0.1", port))
    assert(c)
    local f = assert(async.open(helper.tmpname(), "w"))
    assert(f)
    assert(helper.fd_count() >= base + 5)
    order[#order + 1] = "main"
  end)
  table.sort(order)
  assert(table.concat(order, ",") == "accepted,child,main", table.concat(order, ","))
  assert(helper.fd_count() == base, "run left descriptors open")
  -- The same when run ends with an error, and when tasks wait for each other forever.
  local ok, err = pcall(async.run, function()
    local server = assert(async.listen("127.0.0.1", 0))
    assert(async.open(helper.tmpname(), "w"))
    async.spawn(function() server:accept() end)
    async.sleep(0)
    error("stop")
  end)
  assert(not ok and err:find("stop", 1, true))
  local log = {}
  ok, err = pcall(async.run, function()
    local q = async.queue()
    local _ = closer  -- upvalue
    async.spawn(function()
      local _ <close> = closer(log, "stuck task closed")
      q:get()
    end)
    q:get()
  end)
  assert(not ok and err:find("wait for each other forever", 1, true), err)
  assert(log[1] == "stuck task closed", "a task left behind kept its <close> variables")
  collectgarbage()
  collectgarbage()
  assert(helper.fd_count() == base, "run left descriptors open after an error")
end)

helper.run_cases(cases)
