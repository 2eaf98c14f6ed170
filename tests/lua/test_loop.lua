-- SPDX-License-Identifier: Apache-2.0
-- The loop: ring:wait(n, timeout), ring:run([timeout]), ring:in_flight(), luring.now().
local luring = require "luring"
local helper = require "helper"
local testlib = require "testlib"

local ETIME = luring.errno.ETIME
-- luv opens descriptors of its own when loaded: load it before any case counts them.
local has_luv, uv = pcall(require, "luv")
local now = luring.now
-- How late a timed wait may return, in seconds. Never early. Generous: on a loaded
-- 2-CPU machine (or under TCG) a woken process can wait that long for a CPU; a wait
-- that ignored its deadline would still be caught (they are 0.05-0.2 s, or forever).
local LATE = 0.25

local cases = {}
-- Each case runs in its own process, makes its ring and must leave no descriptor open.
local function case(name, fn)
  cases[#cases + 1] = { name, function()
    local fds = helper.fd_count()
    fn()
    collectgarbage()
    assert(helper.fd_count() == fds, ("%d descriptors leaked"):format(helper.fd_count() - fds))
  end }
end

-- A recv on an idle socket: in flight until cancelled. Returns a function that cancels
-- it, runs the ring empty and closes the sockets.
local function pending_recv(ring, cb)
  local a, b = testlib.socketpair()
  local h = assert(ring:recv(a, 16, 0, cb or function() end))
  return function()
    assert(ring:cancel(h))
    assert(ring:run(5) == 0)
    testlib.close(a)
    testlib.close(b)
  end, a, b
end

-- ---- wait --------------------------------------------------------------------------

-- A request in flight that does not complete: -ETIME after the timeout.
case("wait_timeout", function()
  local ring = luring.queue_init(8, 0)
  local done = pending_recv(ring)
  assert(ring:submit() == 1)
  local t0 = now()
  local ret = ring:wait(1, 0.1)
  local elapsed = now() - t0
  assert(ret == -ETIME, ret)
  assert(elapsed >= 0.1 and elapsed < 0.1 + LATE, elapsed)
  -- Timeout 0: a poll, at once.
  t0 = now()
  assert(ring:wait(1, 0) == -ETIME)
  assert(now() - t0 < LATE)
  assert(ring:in_flight() == 1)
  done()
  -- The same when wait itself submits the request. (An enter that submits returns the
  -- number it submitted, not -ETIME, so wait submits first, then waits.)
  local done2 = pending_recv(ring)
  t0 = now()
  ret = ring:wait(1, 0.1)
  elapsed = now() - t0
  assert(elapsed >= 0.1 and elapsed < 0.1 + LATE, elapsed)
  assert(ret == -ETIME, ret)
  done2()
  helper.raises("timeout must be a number of seconds >= 0", ring.wait, ring, 1, -1)
  helper.raises("must be between 0 and 4294967295", ring.wait, ring, -1)
  ring:close()
end)

-- wait returns how many completions are ready (taken from the ring or not); it does
-- not dispatch.
case("wait_count", function()
  local ring = luring.queue_init(8, 0)
  local calls = 0
  for _ = 1, 3 do assert(ring:nop(function() calls = calls + 1 end)) end
  assert(ring:wait(3) == 3)
  assert(calls == 0 and ring:in_flight() == 3)
  assert(ring:wait(1) == 3)      -- still 3 ready
  assert(ring:wait(0) == 3)
  assert(luring.do_cqes(ring) == 3)
  assert(calls == 3 and ring:in_flight() == 0)
  -- The default n is 1; a timeout does not matter when enough are ready.
  assert(ring:nop())
  assert(ring:wait() == 1)
  assert(ring:wait(1, 0) == 1)
  luring.do_cqes(ring)
  ring:close()
end)

-- Waiting never blocks for completions that cannot come.
case("wait_never_blocks", function()
  local ring = luring.queue_init(8, 0)
  local t0 = now()
  assert(ring:wait() == 0)
  assert(ring:wait(5) == 0)
  assert(ring:wait(5, 10) == 0)
  -- One nop in flight: waiting for 3 waits for the one.
  assert(ring:nop())
  assert(ring:wait(3) == 1)
  assert(ring:wait(3, 10) == 1)
  assert(now() - t0 < LATE, now() - t0)
  luring.do_cqes(ring)
  assert(ring:wait(1, 10) == 0)
  assert(now() - t0 < LATE, now() - t0)
  ring:close()
end)

-- ---- run ---------------------------------------------------------------------------

-- run() runs callbacks until nothing is in flight and returns 0, following requests
-- that callbacks queue.
case("run_until_done", function()
  local ring = luring.queue_init(8, 0)
  local order = {}
  local t0 = now()
  assert(ring:timeout(0.05, nil, nil, function(_, res)
    assert(res == -ETIME)
    order[#order + 1] = "timeout"
    assert(ring:nop(function() order[#order + 1] = "queued by a callback" end))
  end))
  for k = 1, 3 do assert(ring:nop(function() order[#order + 1] = "nop" .. k end)) end
  assert(ring:in_flight() == 4)
  assert(ring:run() == 0)
  assert(now() - t0 >= 0.05)
  assert(table.concat(order, ",") == "nop1,nop2,nop3,timeout,queued by a callback",
         table.concat(order, ","))
  assert(ring:in_flight() == 0)
  -- Nothing in flight: at once.
  t0 = now()
  assert(ring:run() == 0 and ring:run(10) == 0)
  assert(now() - t0 < LATE)
  ring:close()
end)

-- run(timeout) returns what is still in flight when the time is up.
case("run_timeout", function()
  local ring = luring.queue_init(8, 0)
  local got
  local done, _, b = pending_recv(ring, function(_, res, data) got = { res, data } end)
  local t0 = now()
  assert(ring:run(0.1) == 1)
  local elapsed = now() - t0
  assert(elapsed >= 0.1 and elapsed < 0.1 + LATE, elapsed)
  assert(got == nil)
  t0 = now()
  assert(ring:run(0) == 1)
  assert(now() - t0 < LATE)
  -- Data arrives: the recv completes and run returns 0 before its timeout.
  assert(testlib.write(b, "late") == 4)
  t0 = now()
  assert(ring:run(5) == 0)
  assert(now() - t0 < 1)
  assert(got[1] == 4 and got[2] == "late")
  -- done() cancels a recv that is no longer there: its cancel gets -ENOENT; fine.
  done()
  helper.raises("timeout must be a number of seconds >= 0", ring.run, ring, -0.5)
  ring:close()
end)

-- A callback's error stops run and is raised; the other completions of its batch still
-- run, and the ring goes on working.
case("run_raises", function()
  local ring = luring.queue_init(8, 0)
  local ran = 0
  assert(ring:nop(function() error("boom in a callback") end))
  assert(ring:nop(function() ran = ran + 1 end))
  local ok, err = pcall(ring.run, ring)
  assert(not ok and tostring(err):find("boom in a callback", 1, true), tostring(err))
  assert(ran == 1 and ring:in_flight() == 0)
  -- Error values pass through unchanged.
  local value = { code = 7 }
  assert(ring:nop(function() error(value) end))
  ok, err = pcall(ring.run, ring, 1)
  assert(not ok and rawequal(err, value))
  assert(ring:nop(function() ran = ran + 1 end))
  assert(ring:run() == 0 and ran == 2)
  ring:close()
end)

-- A callback that closes the ring ends run: it returns 0.
case("run_close_in_callback", function()
  local ring = luring.queue_init(8, 0)
  local done = false
  local a, b = testlib.socketpair()
  assert(ring:recv(a, 16, 0, function() done = true end))  -- never completes
  assert(ring:nop(function() ring:close() end))
  assert(ring:run(5) == 0)
  assert(not done)
  helper.raises("attempt to use a closed ring", ring.run, ring)
  testlib.close(a)
  testlib.close(b)
end)

-- ---- in_flight ---------------------------------------------------------------------

case("in_flight", function()
  local ring = luring.queue_init(8, 0)
  assert(ring:in_flight() == 0)
  -- Queued but not submitted counts.
  for _ = 1, 3 do assert(ring:nop()) end
  assert(ring:in_flight() == 3)
  assert(ring:submit() == 3)
  assert(ring:in_flight() == 3)  -- until their completions are handled
  assert(ring:wait(3) == 3 and ring:in_flight() == 3)
  luring.do_cqes(ring)
  assert(ring:in_flight() == 0)
  -- A chain counts each member, silent ones included, until the chain ends. (A kernel
  -- without IORING_FEAT_CQE_SKIP, before 5.17, has no silent ones: ring:link refuses it.)
  local silent = 0
  for _, f in ipairs(luring.probe().features.names) do
    if f == "cqe_skip" then silent = luring.sqe.CQE_SKIP_SUCCESS end
  end
  if silent == 0 then print("note: the kernel lacks IORING_FEAT_CQE_SKIP (5.17)") end
  assert(ring:link({ { "nop", nil, silent }, { "nop" } }, "hard"))
  assert(ring:in_flight() == 2)
  assert(ring:run() == 0 and ring:in_flight() == 0)
  -- A full queue queues nothing and counts nothing.
  local small = luring.queue_init(2, 0)
  assert(small:nop() and small:nop())
  assert(small:nop() == nil)
  assert(small:in_flight() == 2)
  assert(small:run() == 0)
  small:close()
  ring:close()
end)

-- ---- multishot ---------------------------------------------------------------------

-- A multishot poll stays in flight: run(timeout) returns 1 at the timeout, with or
-- without completions in between; it ends with poll_remove.
case("multishot", function()
  local ring = luring.queue_init(8, 0)
  local a, b = testlib.socketpair()
  local calls = {}
  local h = assert(ring:poll_multishot(a, "r", function(_, res, more)
    calls[#calls + 1] = { res = res, more = more }
  end))
  assert(ring:in_flight() == 1)
  local t0 = now()
  assert(ring:run(0.2) == 1)
  local elapsed = now() - t0
  assert(elapsed >= 0.2 and elapsed < 0.2 + LATE, elapsed)
  t0 = now()
  assert(ring:wait(1, 0.1) == -ETIME)
  assert(now() - t0 >= 0.1 and #calls == 0)
  -- Data arrives: the callback runs (more = true), and run still waits out its time.
  assert(testlib.write(b, "x") == 1)
  t0 = now()
  assert(ring:run(0.2) == 1)
  elapsed = now() - t0
  assert(elapsed >= 0.2 and elapsed < 0.2 + LATE, elapsed)
  if calls[1] and calls[1].res == -luring.errno.EINVAL then
    helper.skip("the kernel lacks IORING_POLL_ADD_MULTI (5.13)")
  end
  assert(#calls == 1 and calls[1].res == luring.poll.IN and calls[1].more == true)
  assert(ring:in_flight() == 1)
  -- A wait for more than can come (one request) returns what is ready.
  assert(testlib.read(a, 1) == "x")
  assert(testlib.write(b, "y") == 1)
  assert(ring:wait(4, 1) == 1)
  luring.do_cqes(ring)
  assert(#calls == 2 and calls[2].more == true)
  assert(ring:poll_remove(h))
  assert(ring:run() == 0)
  assert(#calls == 3 and calls[3].more == false, #calls)
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

-- ---- luring.now --------------------------------------------------------------------

-- A float, monotonic, and on the clock of absolute timeouts (CLOCK_MONOTONIC, which
-- luv's hrtime reads too).
case("now", function()
  local t = now()
  assert(math.type(t) == "float" and t > 0)
  local prev = t
  for _ = 1, 10000 do
    local n = now()
    assert(n >= prev, "luring.now went backwards")
    prev = n
  end
  if has_luv then
    local diff = math.abs(now() - uv.hrtime() / 1e9)
    assert(diff < 0.05, "not CLOCK_MONOTONIC: " .. diff)  -- REALTIME is decades off
  end
  -- It measures time: a 50 ms timeout takes at least 50 ms by it.
  local ring = luring.queue_init(4, 0)
  t = now()
  assert(ring:timeout(0.05))
  assert(ring:run() == 0)
  local elapsed = now() - t
  assert(elapsed >= 0.05 and elapsed < 0.05 + LATE, elapsed)
  ring:close()
end)

-- ---- run_once ----------------------------------------------------------------------

-- One round: submit, wait for one completion (or the timeout), run the callbacks.
case("run_once", function()
  local ring = luring.queue_init(8, 0)
  local ran = 0
  assert(ring:nop(function() ran = ran + 1 end))
  assert(ring:nop(function() ran = ran + 1 end))
  local handled, left = ring:run_once()
  assert(handled == 2 and left == 0 and ran == 2, handled)
  -- Nothing in flight, no timeout: returns at once (it would wait forever).
  local t0 = now()
  handled, left = ring:run_once()
  assert(handled == 0 and left == 0 and now() - t0 < LATE)
  -- Nothing in flight, a timeout: it sleeps that long (a loop's own deadline).
  t0 = now()
  handled, left = ring:run_once(0.1)
  local took = now() - t0
  assert(handled == 0 and left == 0 and took >= 0.1 and took < 0.1 + LATE, took)
  -- A request that does not complete: the timeout, then it is still in flight.
  local done = pending_recv(ring)
  t0 = now()
  handled, left = ring:run_once(0.1)
  took = now() - t0
  assert(handled == 0 and left == 1 and took >= 0.1 and took < 0.1 + LATE, took)
  done()
  -- A callback's error is raised, as from do_cqes.
  assert(ring:nop(function() error("boom") end))
  helper.raises("boom", ring.run_once, ring)
  helper.raises("timeout must be a number of seconds >= 0", ring.run_once, ring, -1)
  ring:close()
end)

helper.run_cases(cases)
