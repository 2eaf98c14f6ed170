-- SPDX-License-Identifier: Apache-2.0
-- Regression tests for what review found in the op contract and luring.async, each the
-- reproducer of a bug that was fixed.
local luring = require "luring"
local helper = require "helper"
local testlib = require "testlib"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

-- A finalizer that runs while a callback's arguments are pushed (a GC step) and queues
-- more requests than there are free slots makes the slot table grow (realloc): dispatch
-- must not read the slot through a reference taken before (it crashed, or ASan saw a
-- heap-use-after-free in push_input).
case("slot_table_grows_during_push", function()
  local r = luring.queue_init(16, 0)
  local zero = luring.open_file("/dev/zero", "r")
  local got
  assert(r:read(zero, 10, 0, function(_, res, data) got = { res, data } end))
  assert(r:wait(1, 5) == 1)
  luring._test_gc_on_push(r, true)
  collectgarbage("stop")
  local queued = 0
  setmetatable({}, { __gc = function()
    for _ = 1, 200 do
      assert(r:nop(function() end))
      r:submit()
      queued = queued + 1
    end
  end })
  r:do_cqes()
  luring._test_gc_on_push(r, false)
  collectgarbage("restart")
  assert(queued == 200, queued)
  assert(got and got[1] == 10 and got[2] == ("\0"):rep(10), "the read's data was lost")
  assert(r:run(5) == 0)
  r:close()
  testlib.close(zero)
end)

-- A link_timeout runs beside the request it bounds: a silent request in front of it
-- would be taken for ended when the timeout's CQE comes first (its callback was lost
-- and its slot freed while the kernel still had it). Refused; without the flag both
-- callbacks run.
case("silent_request_bounded_by_link_timeout", function()
  local r = luring.queue_init(16, 0)
  local rfd, wfd = testlib.pipe()
  local skip = luring.sqe.CQE_SKIP_SUCCESS
  helper.raises("CQE_SKIP_SUCCESS cannot go on the request a link_timeout bounds", r.link, r, {
    { "poll_add", rfd, "r", function() end, skip }, { "link_timeout", 0.05, function() end },
  }, "hard")
  assert(r:in_flight() == 0)
  local got = {}
  assert(r:link({
    { "poll_add", rfd, "r", function(_, res) got.poll = res end },
    { "link_timeout", 0.05, function(_, res) got.lt = res end },
  }, "hard"))
  assert(r:run(2) == 0)
  assert(got.poll == -luring.errno.ECANCELED and got.lt == -luring.errno.ETIME, got.poll)
  r:close()
  testlib.close(rfd)
  testlib.close(wfd)
end)

-- A chain longer than the SQ can never be queued: an error, not nil forever.
case("chain_longer_than_the_queue", function()
  local r = luring.queue_init(8, 0)
  local chain = {}
  for k = 1, 9 do chain[k] = { "nop" } end
  helper.raises("a chain of 9 requests cannot fit in a submission queue of 8 entries",
                r.link, r, chain)
  chain[9] = nil
  assert(r:link(chain))
  assert(r:run(2) == 0)
  r:close()
end)

-- A metamethod of a table an op reads can close the ring during the argument checks:
-- the op then raises, outside callbacks (it returned nil as if the SQ were full) and
-- inside them (the request was queued on the closing ring).
case("ring_closed_during_checks", function()
  local zero = luring.open_file("/dev/zero", "r")
  local r = luring.queue_init(8, 0)
  local sizes = setmetatable({}, {
    __len = function() return 2 end,
    __index = function() r:close() return 4 end,
  })
  helper.raises("attempt to use a closed ring", r.readv, r, zero, sizes, 0)
  local r2 = luring.queue_init(8, 0)
  local err
  assert(r2:nop(function()
    local t = setmetatable({}, {
      __len = function() return 2 end,
      __index = function() luring.queue_exit(r2) return 4 end,
    })
    local ok, e = pcall(r2.readv, r2, zero, t, 0, function() error("must not run") end)
    err = not ok and e
  end))
  r2:run(1)
  assert(err and err:find("attempt to use a closed ring", 1, true), tostring(err))
  testlib.close(zero)
end)

-- Deadlines that never come (math.huge, 1e13) or are not numbers (NaN) ended the whole
-- async.run with "bad argument #2 to 'run_once'".
case("async_huge_deadlines", function()
  local async = require "luring.async"
  local results = table.pack(async.run(function()
    local a = async.timeout(math.huge, function() async.sleep(0.01) return "a" end)
    local b = async.timeout(1e13, function() async.sleep(0.01) return "b" end)
    local c = async.timeout(0 / 0, function() async.sleep(0.01) return "c" end)
    local t = async.spawn(function() async.sleep(0.01) return "d" end)
    local _, d = t:join(1e13)
    local q = async.queue()
    async.spawn(function() async.sleep(0.01) q:put("e") end)
    local e = q:get(math.huge)
    return a, b, c, d, e
  end))
  assert(table.concat(results, "", 1, results.n) == "abcde", table.concat(results, ","))
end)

-- A socket wrapped outside run (as LuaSocket users do) works inside one.
case("async_wrap_outside_run", function()
  local async = require "luring.async"
  local a, b = testlib.socketpair()
  local s = async.wrap(a)
  local line = async.run(function()
    testlib.write(b, "hello\n")
    local l = assert(s:receive("*l"))
    assert(s:send("back\n") == 5)
    s:close()
    return l
  end)
  assert(line == "hello", line)
  testlib.close(b)
end)

helper.run_cases(cases)
