-- SPDX-License-Identifier: Apache-2.0
-- do_cqes and cqe_seen (reliability cases 31-35 and 38): callback errors, forgotten and
-- repeated cqe_seen, reentrancy, yields, and the return value. Every completion must be
-- handled exactly once whatever its callback does.
local luring = require "luring"
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

local devnull = luring.open_file("/dev/null", "w")
assert(devnull >= 0)

local function now() return helper.now() end

-- Counts calls per name: local calls, cb = tally(); cb("A") ...; calls.A == 1.
local function tally()
  local calls = setmetatable({}, { __index = function() return 0 end })
  return calls, function(name) calls[name] = calls[name] + 1 end
end

-- Case 31: a callback raising in the middle of a batch.
case("case31_callback_errors", function()
  local r = luring.queue_init(8, 0)
  local calls, hit = tally()
  local errtab = { code = 1 }
  local function cbA(_, res) assert(res == 1); hit("A") end
  local function cbB(_, res) assert(res == 1); hit("B"); error(errtab) end
  local function cbC(_, res) assert(res == 1); hit("C") end
  assert(luring.write(r, devnull, "a", 0, cbA))
  assert(luring.write(r, devnull, "b", 0, cbB))
  assert(luring.write(r, devnull, "c", 0, cbC))
  assert(luring.submit_and_wait(r, 3) == 3)
  local ok, err = pcall(luring.do_cqes, r)
  assert(not ok)
  assert(type(err) == "table" and err.code == 1)
  assert(rawequal(err, errtab), "a table error value must pass through unchanged")
  assert(calls.A <= 1 and calls.B == 1 and calls.C <= 1)
  luring.do_cqes(r)
  assert(calls.A == 1 and calls.B == 1 and calls.C == 1)
  assert(luring.do_cqes(r) == 0)
  assert(tostring(r):find(" 0 in flight"), tostring(r))

  -- The completions after the failing one stay queued for the next do_cqes (or ran in
  -- the same batch): across both calls each of 100 runs exactly once.
  local r2 = luring.queue_init(128, 0)
  local seen = {}
  for i = 1, 100 do
    assert(luring.write(r2, devnull, "x", 0, function()
      seen[i] = (seen[i] or 0) + 1
      if i == 1 then error({ code = 2 }) end
    end))
  end
  assert(luring.submit_and_wait(r2, 100) == 100)
  local ok2, err2 = pcall(luring.do_cqes, r2)
  assert(not ok2 and err2.code == 2)
  local first = 0
  for i = 1, 100 do first = first + (seen[i] or 0) end
  assert(first >= 1 and first <= 100)
  assert(luring.do_cqes(r2) == 100 - first)
  for i = 1, 100 do assert(seen[i] == 1, i) end
  r2:close()

  -- Two failing callbacks in one batch: the first error is raised, the second
  -- callback still ran (its error is dropped). Which completes first is the kernel's
  -- choice (5.10 runs some /dev/null writes in its workers, which may finish in either
  -- order): the error raised is that of the callback that ran first.
  calls, hit = tally()
  local order = {}
  assert(luring.write(r, devnull, "a", 0, function()
    hit("E1"); order[#order + 1] = 11; error({ code = 11 })
  end))
  assert(luring.write(r, devnull, "b", 0, function()
    hit("E2"); order[#order + 1] = 12; error({ code = 12 })
  end))
  assert(luring.submit_and_wait(r, 2) == 2)
  ok, err = pcall(luring.do_cqes, r)
  luring.do_cqes(r)
  assert(calls.E1 == 1 and calls.E2 == 1)
  assert(not ok and err.code == order[1], tostring(err and err.code))

  -- String errors: the message intact, a traceback appended.
  assert(luring.write(r, devnull, "s", 0, function() error("boom in callback") end))
  assert(luring.submit_and_wait(r, 1) == 1)
  ok, err = pcall(luring.do_cqes, r)
  assert(not ok and type(err) == "string")
  assert(err:find("^[^\n]*test_dispatch%.lua:%d+: boom in callback\nstack traceback:\n"), err)
  assert(luring.write(r, devnull, "s", 0, function() error("x", 0) end))
  assert(luring.submit_and_wait(r, 1) == 1)
  ok, err = pcall(luring.do_cqes, r)
  assert(not ok and err:sub(1, 2) == "x\n" and err:find("stack traceback:", 1, true), err)
  -- An error whose value is nil still makes do_cqes fail.
  assert(luring.write(r, devnull, "s", 0, function() error(nil) end))
  assert(luring.submit_and_wait(r, 1) == 1)
  ok, err = pcall(luring.do_cqes, r)
  assert(not ok and err == nil)
  assert(luring.do_cqes(r) == 0)
  assert(tostring(r):find(" 0 in flight"), tostring(r))

  -- 10^5 rounds of the three-callback case: nothing retained per round (callbacks,
  -- error values, slots) so the Lua heap stays flat.
  calls, hit = tally()
  local nA, nB, nC = 0, 0, 0
  cbA = function() nA = nA + 1 end
  cbB = function() nB = nB + 1; error(errtab) end
  cbC = function() nC = nC + 1 end
  local rounds = 100000
  local before
  for i = 1, rounds do
    if i == 1001 then
      collectgarbage()
      collectgarbage()
      before = collectgarbage("count")
    end
    luring.write(r, devnull, "a", 0, cbA)
    luring.write(r, devnull, "b", 0, cbB)
    luring.write(r, devnull, "c", 0, cbC)
    luring.submit_and_wait(r, 3)
    ok, err = pcall(luring.do_cqes, r)
    if ok or err ~= errtab then error("round " .. i .. ": do_cqes did not raise the table") end
    luring.do_cqes(r)
  end
  assert(nA == rounds and nB == rounds and nC == rounds, ("%d %d %d"):format(nA, nB, nC))
  collectgarbage()
  collectgarbage()
  local grown = collectgarbage("count") - before
  assert(grown < 64, ("Lua heap grew by %.1f KiB over %d failing rounds"):format(grown, rounds))
  assert(tostring(r):find(" 0 in flight"), tostring(r))
  r:close()
end)

-- Case 32: callbacks that never call cqe_seen. Each runs once, every do_cqes returns,
-- and the ring keeps its capacity.
case("case32_no_cqe_seen", function()
  local r = luring.queue_init(256, 0)
  local total = 100000
  local seen = {}
  local issued, done = 0, 0
  local slowest = 0
  while done < total do
    while issued < total do
      local i = issued + 1
      local h = luring.write(r, devnull, "z", 0, function(_, res)
        assert(res == 1)
        seen[i] = (seen[i] or 0) + 1
        done = done + 1
      end)
      if not h then break end
      assert(math.type(h) == "integer")
      issued = i
    end
    assert(luring.submit_and_wait(r, 1) >= 0)
    local t0 = now()
    assert(luring.do_cqes(r) >= 1)
    slowest = math.max(slowest, now() - t0)
  end
  assert(slowest < 2, slowest)
  for i = 1, total do
    if seen[i] ~= 1 then error(("callback %d ran %s times"):format(i, seen[i])) end
  end
  assert(luring.do_cqes(r) == 0)
  -- The ring still has its full capacity.
  local cb, count = helper.counter()
  for _ = 1, 256 do assert(luring.write(r, devnull, "z", 0, cb)) end
  assert(luring.write(r, devnull, "z", 0, cb) == nil)
  assert(luring.submit_and_wait(r, 256) == 256)
  assert(luring.do_cqes(r) == 256 and count() == 256)
  r:close()
end)

-- Case 33: cqe_seen twice, stale, foreign, or not a cqe at all.
case("case33_bad_cqe_seen", function()
  local rA = luring.queue_init(8, 0)
  local rB = luring.queue_init(8, 0)
  local calls, hit = tally()
  local saved
  assert(luring.write(rA, devnull, "1", 0, function(cqe, res)
    assert(res == 1)
    luring.cqe_seen(rA, cqe)
    luring.cqe_seen(rA, cqe)  -- a no-op: must not skip the next completion
    rA:cqe_seen(cqe)
    assert(select("#", luring.cqe_seen(rA, cqe)) == 0)
    helper.raises("cqe belongs to another ring", luring.cqe_seen, rB, cqe)
    saved = cqe
    hit("one")
  end))
  assert(luring.write(rA, devnull, "2", 0, function(cqe, res)
    assert(res == 1)
    helper.raises("stale cqe", luring.cqe_seen, rA, saved)  -- the previous callback's
    luring.cqe_seen(rA, cqe)
    hit("two")
  end))
  assert(luring.submit_and_wait(rA, 2) == 2)
  assert(luring.do_cqes(rA) == 2)
  assert(calls.one == 1 and calls.two == 1)
  -- After do_cqes returned, the saved cqe is stale everywhere.
  helper.raises("stale cqe", luring.cqe_seen, rA, saved)
  helper.raises("stale cqe", rA.cqe_seen, rA, saved)
  helper.raises("cqe belongs to another ring", luring.cqe_seen, rB, saved)
  -- ...also inside a later callback of the same ring, and the ring is unharmed.
  assert(luring.write(rA, devnull, "3", 0, function(cqe)
    helper.raises("stale cqe", luring.cqe_seen, rA, saved)
    luring.cqe_seen(rA, cqe)
    hit("three")
  end))
  assert(luring.write(rA, devnull, "4", 0, function() hit("four") end))
  assert(luring.submit_and_wait(rA, 2) == 2)
  assert(luring.do_cqes(rA) == 2)
  assert(calls.three == 1 and calls.four == 1)
  assert(luring.do_cqes(rA) == 0)
  -- Not a cqe at all: an argument error naming the function and the argument.
  for _, bad in ipairs({ 42, "x", {}, true, print }) do
    local msg = helper.raises("bad argument #2 to '", luring.cqe_seen, rA, bad)
    assert(msg:find("cqe_seen' (cqe expected", 1, true), msg)
  end
  local msg = helper.raises("bad argument #2 to '", luring.cqe_seen, rA, nil)
  assert(msg:find("cqe_seen' (cqe expected", 1, true), msg)
  msg = helper.raises("bad argument #2 to '", luring.cqe_seen, rA)
  assert(msg:find("cqe_seen' (cqe expected", 1, true), msg)
  msg = helper.raises("bad argument #1 to '", luring.cqe_seen, nil, saved)
  assert(msg:find("cqe_seen' (luring.Ring expected", 1, true), msg)
  rB:close()
  helper.raises("closed ring", luring.cqe_seen, rB, saved)
  rA:close()
end)

-- Case 34: work started from inside a callback. Run twice: as the kernel does /dev/null
-- writes (inline on recent kernels), and with IOSQE_ASYNC, which sends each write to an
-- io-wq worker as 5.10 does on its own: completions then come later and in any order,
-- so nothing below may assume they are all in once some are, or in submission order.
local function reentrancy(sqe_flags)
  -- A write to /dev/null of `data`, with this run's SQE flags.
  local function W(ring, data, cb) return luring.write(ring, devnull, data, 0, cb, sqe_flags) end
  -- Waits, bounded, until `n` completions are ready (in the CQ or taken and unhandled).
  local function wait_ready(ring, n)
    local deadline = now() + 10
    while ring:wait(n, 1) < n do assert(now() < deadline, "completions did not arrive") end
  end

  -- Submitting from a callback.
  local r = luring.queue_init(8, 0)
  local calls, hit = tally()
  assert(W(r, "p", function()
    hit("parent")
    assert(W(r, "c", function() hit("child") end))
    assert(luring.submit(r) == 1)
  end))
  helper.run_until(r, function() return calls.child > 0 end)
  assert(calls.parent == 1 and calls.child == 1)
  assert(luring.do_cqes(r) == 0)

  -- do_cqes from inside a callback: the inner call takes what the outer has not
  -- handled yet, and each completion is handled exactly once overall. All ten writes
  -- have completed before the outer call starts, so the inner one (in write 1's
  -- callback) must handle every write the outer had not reached, whatever the order.
  local seen, inner_handled, ran, ran_before_1 = {}, 0, 0, nil
  for i = 1, 10 do
    assert(W(r, "n", function()
      ran = ran + 1
      seen[i] = (seen[i] or 0) + 1
      if i == 1 then
        ran_before_1 = ran - 1
        -- New work posted from the callback: handled by the nested call if it has
        -- completed by then (inline), else later; once either way.
        assert(W(r, "m", function() seen[11] = (seen[11] or 0) + 1 end))
        assert(luring.submit(r) == 1)
        inner_handled = luring.do_cqes(r)
      end
    end))
    if i == 8 then assert(luring.submit(r) == 8) end
  end
  assert(luring.submit(r) == 2)
  wait_ready(r, 10)
  local outer_handled = luring.do_cqes(r)
  for i = 1, 10 do assert(seen[i] == 1, i) end
  local rest = 10 - 1 - ran_before_1  -- writes after write 1: all ready, all the inner call's
  assert(inner_handled == rest or inner_handled == rest + 1 and seen[11] == 1,
         ("inner %d, %d writes after write 1"):format(inner_handled, rest))
  local deadline = now() + 10
  while not seen[11] do  -- "m", if it was not in yet
    assert(now() < deadline, "the write queued from the callback never completed")
    r:wait(1, 1)
    outer_handled = outer_handled + luring.do_cqes(r)
  end
  for i = 1, 11 do assert(seen[i] == 1, i) end
  assert(outer_handled + inner_handled == 11, outer_handled .. " + " .. inner_handled)
  assert(luring.do_cqes(r) == 0)

  -- A callback of the nested call raises: the error goes through the outer callback
  -- to the caller, and the rest is still handled exactly once.
  seen = {}
  for i = 1, 6 do
    assert(W(r, "e", function()
      seen[i] = (seen[i] or 0) + 1
      if i == 1 then luring.do_cqes(r) end
      if i == 3 then error({ code = 3 }) end
    end))
  end
  assert(luring.submit_and_wait(r, 6) == 6)
  local ok, err = pcall(luring.do_cqes, r)
  assert(not ok and err.code == 3)
  luring.do_cqes(r)
  for i = 1, 6 do assert(seen[i] == 1, i) end
  assert(luring.do_cqes(r) == 0)

  -- Nested all the way down: every callback calls do_cqes.
  local depth, maxdepth, count = 0, 0, 0
  local function nest()
    count = count + 1
    depth = depth + 1
    maxdepth = math.max(maxdepth, depth)
    luring.do_cqes(r)
    depth = depth - 1
  end
  for _ = 1, 8 do assert(W(r, "d", nest)) end
  assert(luring.submit_and_wait(r, 8) == 8)
  luring.do_cqes(r)
  assert(count == 8 and depth == 0 and maxdepth == 8, count .. " " .. maxdepth)
  r:close()

  -- queue_exit inside a callback: deferred until do_cqes unwinds, the other callbacks
  -- do not run, requests still in flight are reaped silently, and every later use
  -- raises "closed ring".
  local baseline = helper.fd_count()
  local client, peer = helper.tcp_pair()
  r = luring.queue_init(16, 0)
  calls, hit = tally()
  assert(luring.recv(r, client:getfd(), 64, 0, function() hit("recv") end))
  local first = true
  for _ = 1, 5 do
    assert(W(r, "q", function(cqe)
      hit("write")
      if first then  -- whichever completion is handled first (any order under io-wq)
        first = false
        luring.queue_exit(r)
        luring.queue_exit(r)  -- still idempotent
        assert(tostring(r):find("closed"))
        helper.raises("closed ring", luring.write, r, devnull, "late", 0)
        helper.raises("closed ring", luring.submit, r)
        helper.raises("closed ring", luring.do_cqes, r)
        helper.raises("closed ring", luring.cqe_seen, r, cqe)
      end
    end))
  end
  assert(luring.submit_and_wait(r, 5) == 6)
  assert(luring.do_cqes(r) == 1)
  assert(calls.write == 1 and calls.recv == 0)
  helper.raises("closed ring", luring.do_cqes, r)
  helper.raises("closed ring", luring.submit_and_wait, r, 1)
  peer:send("after close")  -- nobody may receive this into freed memory
  luring.queue_exit(r)
  r = nil
  collectgarbage()
  collectgarbage()
  client:close()
  peer:close()
  assert(helper.fd_count() == baseline, "the ring's descriptor was not closed")

  -- queue_exit inside a nested do_cqes, then the outer callback raises: the error
  -- reaches the caller, the ring is closed, and the read still in flight is reaped
  -- without its callback.
  r = luring.queue_init(8, 0)
  calls, hit = tally()
  local rfd = helper.fifo()
  assert(luring.read(r, rfd, 16, 0, function() hit("never") end))
  assert(W(r, "o", function()
    hit("outer")
    assert(W(r, "i", function() hit("inner"); r:close() end))
    assert(luring.submit_and_wait(r, 1) == 1)
    luring.do_cqes(r)
    error({ code = 34 })
  end))
  assert(luring.submit_and_wait(r, 1) == 2)
  ok, err = pcall(luring.do_cqes, r)
  assert(not ok and err.code == 34)
  assert(calls.outer == 1 and calls.inner == 1 and calls.never == 0)
  assert(tostring(r):find("closed"))
  helper.raises("closed ring", luring.do_cqes, r)

  -- A 10,000-step chain: each callback issues the next write and waits for it itself.
  r = luring.queue_init(4, 0)
  local steps, limit = 0, 10000
  local function step(_, res)
    assert(res == 1)
    steps = steps + 1
    if steps < limit then
      assert(W(r, "s", step))
      assert(luring.submit_and_wait(r, 1) == 1)
    end
  end
  assert(W(r, "s", step))
  assert(luring.submit_and_wait(r, 1) == 1)
  local passes = 0
  while steps < limit do
    passes = passes + 1
    assert(passes <= limit, "the chain stalled")
    assert(luring.do_cqes(r) >= 1)
  end
  assert(steps == limit)
  assert(luring.do_cqes(r) == 0)
  assert(tostring(r):find(" 0 in flight"), tostring(r))

  -- A callback that keeps completing new work inline does not keep one do_cqes
  -- running forever: a pass handles what was ready when it started.
  local running, spins = true, 0
  local function spin()
    spins = spins + 1
    if spins == 100000 then running = false end  -- fail below rather than hang
    if running then
      assert(W(r, "f", spin))
      assert(luring.submit(r) == 1)  -- completes inline, or soon (io-wq)
    end
  end
  assert(W(r, "f", spin))
  assert(luring.submit_and_wait(r, 1) == 1)
  local t0 = now()
  local handled = luring.do_cqes(r)
  assert(handled >= 1 and handled <= 64 and spins == handled, handled)
  assert(now() - t0 < 2)
  running = false
  helper.run_until(r, function() return tostring(r):find(" 0 in flight") ~= nil end)
  luring.do_cqes(r)
  assert(luring.do_cqes(r) == 0)
  r:close()
end

case("case34_reentrancy", function() reentrancy(0) end)
case("case34_reentrancy_async", function() reentrancy(luring.sqe.ASYNC) end)


-- Finalizers at the push. luring._test_gc_on_push(ring, true) runs a full collection,
-- finalizers included, right before each callback's arguments are pushed: where a GC
-- step inside a Lua API call can otherwise land, at random. With the collector stopped,
-- `n` unreachable objects with finalizer `fn` are collected there and nowhere else.
local function finalizers_at_next_push(n, fn)
  collectgarbage("stop")
  for _ = 1, n do setmetatable({}, { __gc = fn }) end
end

-- A finalizer that queues reads into the ring while a read's data is being pushed must
-- not get that read's slot: released before the push (as it once was), the slot would
-- be reused and its buffer written over by the kernel, or freed (a large buffer is given
-- back when its request ends) and read after free.
case("finalizer_read_keeps_data", function()
  local testlib = require "testlib"
  local base = helper.fd_count()
  local r = luring.queue_init(16, 0)
  local zero = luring.open_file("/dev/zero", "r")
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local small = ("0123456789"):rep(100)
  local lines = {}
  for i = 1, 256 * 1024 / 16 do lines[i] = ("%015d\n"):format(i) end
  local big = table.concat(lines)  -- 256 KiB: more than a slot keeps after its request
  local wrote = 0
  assert(r:write(fd, small, 0, function(_, res) wrote = wrote + res end))
  assert(r:write(fd, big, #small, function(_, res) wrote = wrote + res end))
  helper.run_until(r, function() return wrote == #small + #big end)
  luring._test_gc_on_push(r, true)

  local armed, delivered = false, false
  local finalized, queued, zeros, errors = 0, 0, 0, {}
  local function finalizer()
    if not armed then return end
    finalized = finalized + 1
    if delivered then errors[#errors + 1] = "finalizer ran after the callback" end
    local ok, err = pcall(function()
      assert(r:read(zero, #small, 0, function(_, res, data)
        assert(res == #small and data == ("\0"):rep(#small), res)
        zeros = zeros + 1
      end))
      queued = queued + 1
      -- The kernel has written this read's buffer before the push goes on.
      assert(r:wait(queued, 5) == queued, "the finalizer's read did not complete")
    end)
    if not ok then errors[#errors + 1] = tostring(err) end  -- __gc errors are only warnings
  end

  for _, t in ipairs({ { small, 0 }, { big, #small } }) do
    local want, offset = t[1], t[2]
    for round = 1, 5 do
      local got
      delivered = false
      assert(r:read(fd, #want, offset, function(_, res, data)
        delivered = true
        assert(res == #want, res)
        got = data
      end))
      assert(r:wait(1, 5) == 1, "the read did not complete")
      queued = 0
      local before = finalized
      finalizers_at_next_push(3, finalizer)
      armed = true
      assert(r:do_cqes() == 1)
      armed = false
      collectgarbage("restart")
      assert(#errors == 0, errors[1])
      assert(finalized - before == 3, finalized - before)
      assert(delivered and #got == #want, #got)
      if got ~= want then
        local k = 1
        while got:byte(k) == want:byte(k) do k = k + 1 end
        error(("%d-byte read, round %d: data differs from byte %d on (%q): the " ..
               "finalizer's read took its slot"):format(#want, round, k, got:sub(k, k + 7)))
      end
      local n = zeros + 3
      helper.run_until(r, function() return zeros == n end)
    end
  end
  assert(r:in_flight() == 0)
  r:close()
  assert(testlib.close(zero) and testlib.close(fd))
  assert(helper.fd_count() == base, ("fds %d -> %d"):format(base, helper.fd_count()))
end)

-- A finalizer that closes the ring while do_cqes pushes the first callback's arguments:
-- no callback of that batch runs any more (not even the one being pushed), the accepted
-- descriptors of the batch are closed (nobody received them), what is still in flight
-- ends silently, and the ring reports closed.
case("finalizer_closes_ring_in_batch", function()
  local socket = require "socket"
  local testlib = require "testlib"
  local base = helper.fd_count()
  local srv = assert(socket.tcp())
  assert(srv:bind("127.0.0.1", 0))
  assert(srv:listen(8))
  local _, port = srv:getsockname()
  local a, b = assert(testlib.socketpair())
  local r = luring.queue_init(16, 0)
  luring._test_gc_on_push(r, true)
  local calls, hit = tally()
  for _ = 1, 3 do
    assert(r:accept(srv:getfd(), 0, function(_, res) hit("accept"); hit(res) end))
  end
  assert(r:submit() == 3)
  local clients = {}
  for i = 1, 3 do
    clients[i] = assert(socket.tcp())
    assert(clients[i]:connect("127.0.0.1", port))
  end
  assert(r:wait(3, 5) == 3, "the connections were not accepted")
  for _ = 1, 5 do assert(r:write(devnull, "w", 0, function() hit("write") end)) end
  assert(r:recv(a, 16, 0, function() hit("recv") end))  -- never completes
  assert(r:wait(8, 5) == 8, "the writes did not complete")
  assert(r:in_flight() == 9)

  local finalized, closed_at = 0, nil
  finalizers_at_next_push(1, function()
    finalized = finalized + 1
    closed_at = calls.accept + calls.write + calls.recv
    r:close()
  end)
  local ok, err = pcall(r.do_cqes, r)
  collectgarbage("restart")
  assert(ok, err)
  assert(finalized == 1, finalized)
  assert(closed_at == 0, "a callback ran before the first push")
  assert(calls.accept == 0 and calls.write == 0 and calls.recv == 0,
         ("callbacks ran on a closed ring: %d accept, %d write, %d recv"):format(
           calls.accept, calls.write, calls.recv))
  assert(tostring(r):find("^luring.Ring %(closed%)"), tostring(r))
  helper.raises("closed ring", r.do_cqes, r)
  helper.raises("closed ring", r.in_flight, r)
  assert(testlib.write(b, "late") == 4)  -- nobody may receive this into freed memory
  for i = 1, 3 do clients[i]:close() end
  srv:close()
  assert(testlib.close(a) and testlib.close(b))
  r = nil
  collectgarbage()
  assert(helper.fd_count() == base, ("fds %d -> %d: the batch's accepted descriptors " ..
    "leaked"):format(base, helper.fd_count()))
end)

-- Case 35: coroutine.yield inside a callback raises the documented error out of
-- do_cqes; the completion is consumed and the others are delivered exactly once.
case("case35_yield", function()
  local r = luring.queue_init(128, 0)
  local seen = {}
  for i = 1, 100 do
    assert(luring.write(r, devnull, "y", 0, function()
      seen[i] = (seen[i] or 0) + 1
      if i == 1 then coroutine.yield("nope") end
    end))
  end
  assert(luring.submit_and_wait(r, 100) == 100)
  local co = coroutine.wrap(function() return luring.do_cqes(r) end)
  local ok, err = pcall(co)
  assert(not ok and type(err) == "string")
  assert(err:find("attempt to yield across a C-call boundary", 1, true), err)
  local first = 0
  for i = 1, 100 do first = first + (seen[i] or 0) end
  assert(seen[1] == 1 and first <= 100)
  assert(luring.do_cqes(r) == 100 - first)
  for i = 1, 100 do assert(seen[i] == 1, i) end
  assert(luring.do_cqes(r) == 0)

  -- do_cqes running inside a coroutine is fine, and its callbacks may resume other
  -- coroutines (which may yield back to them).
  local got = {}
  local worker = coroutine.create(function(first_res)
    local res = first_res
    while true do
      got[#got + 1] = res
      res = coroutine.yield()
    end
  end)
  for _ = 1, 3 do
    assert(luring.write(r, devnull, "abc", 0, function(_, res)
      assert(coroutine.resume(worker, res))
    end))
  end
  assert(luring.submit_and_wait(r, 3) == 3)
  local driver = coroutine.wrap(function()
    local n = luring.do_cqes(r)
    coroutine.yield(n)
    return "done"
  end)
  assert(driver() == 3)
  assert(driver() == "done")
  assert(#got == 3 and got[1] == 3 and got[3] == 3)
  r:close()
end)

-- Case 38: do_cqes never blocks and returns the number of completions handled.
case("case38_return_value", function()
  local r = luring.queue_init(8, 0)
  local t0 = now()
  for _ = 1, 1000 do assert(luring.do_cqes(r) == 0) end
  assert(now() - t0 < 1)
  -- A request in flight that will not complete does not make it wait either.
  local client, peer = helper.tcp_pair()
  local cb, count = helper.counter()
  assert(luring.recv(r, client:getfd(), 16, 0, cb))
  assert(luring.submit(r) == 1)
  t0 = now()
  assert(luring.do_cqes(r) == 0)
  assert(now() - t0 < 1)
  -- One completion: 1, exactly one callback, then 0 again.
  local cbw, countw = helper.counter()
  assert(luring.write(r, devnull, "1", 0, cbw))
  assert(luring.submit_and_wait(r, 1) == 1)
  assert(luring.do_cqes(r) == 1)
  assert(countw() == 1 and count() == 0)
  assert(luring.do_cqes(r) == 0)
  -- A completion without a callback still counts.
  assert(luring.write(r, devnull, "2", 0))
  assert(luring.submit_and_wait(r, 1) == 1)
  assert(luring.do_cqes(r) == 1)
  assert(luring.do_cqes(r) == 0)
  r:close()
  client:close()
  peer:close()
end)

helper.run_cases(cases)
