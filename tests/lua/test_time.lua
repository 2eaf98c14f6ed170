-- SPDX-License-Identifier: Apache-2.0
-- Time and control ops against the kernel: timeout (relative, absolute, realtime,
-- count), timeout_remove, poll_add / poll_multishot / poll_remove, cancel, cancel_fd,
-- cancel_all, nop; and chains (ring:link): link_timeout, write+fsync, CQE_SKIP_SUCCESS,
-- chains that do not fit, hard links and link errors.
local luring = require "luring"
local helper = require "helper"
local testlib = require "testlib"

local ETIME, ECANCELED = luring.errno.ETIME, luring.errno.ECANCELED
local ENOENT, EBADF, EISDIR = luring.errno.ENOENT, luring.errno.EBADF, luring.errno.EISDIR
local now = luring.now
-- How late a timer may fire (dispatch included), in seconds. Never early.
local LATE = 0.05

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

-- Skips unless the kernel has the op (the probe answers; never the version).
local function require_op(name)
  local p = luring.probe()
  if not p.probe.supported then helper.skip("the kernel has no probe (before 5.6)") end
  for _, op in ipairs(p.ops) do
    if op.name == name then
      if not op.supported then helper.skip("the kernel lacks IORING_OP_" .. name:upper()) end
      return
    end
  end
  helper.skip("the kernel does not know IORING_OP_" .. name:upper())
end

-- Skips unless the ring's features (IORING_FEAT_*, as luring.probe() reads them) have
-- `name`, which came in `since`.
-- Skips unless the kernel has IORING_FEAT_CQE_SKIP (5.17). Without it a chain with a
-- CQE_SKIP_SUCCESS member is refused, saying so, and nothing is queued.
local function require_cqe_skip()
  for _, have in ipairs(luring.probe().features.names) do
    if have == "cqe_skip" then return end
  end
  local ring = luring.queue_init(4, 0)
  helper.raises("request 1: CQE_SKIP_SUCCESS needs IORING_FEAT_CQE_SKIP (5.17), which this "
                .. "kernel lacks", ring.link, ring,
                { { "nop", nil, luring.sqe.CQE_SKIP_SUCCESS }, { "nop" } }, "hard")
  assert(ring:in_flight() == 0 and ring:run(0) == 0)
  ring:close()
  helper.skip("the kernel lacks IORING_FEAT_CQE_SKIP (5.17)")
end

-- A descriptor whose reads fail when they run (-EISDIR), on every kernel. A bad
-- descriptor number is no good for that: 5.10 looks files up when the request is
-- submitted, and a request refused there ends its chain, hard or not (6.x looks them up
-- when the request runs).
local function directory_fd()
  local fd = luring.open_file("/", "r")
  assert(fd >= 0, fd)
  return fd
end

-- Skips unless async_cancel takes its flags (IORING_ASYNC_CANCEL_FD, ALL, ANY: 5.19),
-- asked of the kernel: `start(ring, cb)` queues the cancel with nothing in flight,
-- which finds nothing (0) where the flag is known and is refused (-EINVAL) where not.
local function require_cancel_flag(name, start)
  local ring = luring.queue_init(2, 0)
  local res
  assert(start(ring, function(_, r) res = r end))
  assert(ring:run(5) == 0, "the cancel did not complete")
  ring:close()
  if res == -luring.errno.EINVAL then
    helper.skip("the kernel lacks IORING_ASYNC_CANCEL_" .. name .. " (5.19)")
  end
  assert(res == 0, ("a cancel with nothing to find gave %d"):format(res))
end

-- Records callbacks: cb(tag) returns a callback storing its arguments under `tag`, in
-- the order they ran (got.order).
local function recorder()
  local got = { order = {} }
  local function cb(tag)
    return function(cqe, res, ...)
      assert(type(cqe) == "userdata", "cqe is a token")
      assert(got[tag] == nil, tag .. " called twice")
      got[tag] = { res = res, t = now(), n = select("#", ...), ... }
      got.order[#got.order + 1] = tag
    end
  end
  return got, cb
end

-- Runs `ring` until nothing is in flight (5 s at most).
local function drain(ring)
  assert(ring:run(5) == 0, "requests still in flight")
end

-- ---- nop ---------------------------------------------------------------------------

case("nop", function()
  require_op("nop")
  local ring = luring.queue_init(8, 0)
  local got, cb = recorder()
  local h = ring:nop(cb("a"))
  assert(math.type(h) == "integer" and h > 0, h)
  assert(luring.nop(ring, cb("b")) ~= h)
  assert(ring:in_flight() == 2)
  drain(ring)
  assert(got.a.res == 0 and got.b.res == 0 and got.a.n == 0)
  -- No callback is fine too.
  assert(ring:nop())
  drain(ring)
  ring:close()
end)

-- ---- timeout -----------------------------------------------------------------------

case("timeout_relative", function()
  require_op("timeout")
  local ring = luring.queue_init(8, 0)
  local got, cb = recorder()
  local t0 = now()
  assert(ring:timeout(0.1, nil, nil, cb("t")))
  drain(ring)
  local elapsed = got.t.t - t0
  assert(got.t.res == -ETIME, got.t.res)
  assert(elapsed >= 0.1 and elapsed < 0.1 + LATE, elapsed)
  assert(got.t.n == 0)
  -- "relative" spelled out, fractional seconds, and 0 (fires at once).
  t0 = now()
  assert(ring:timeout(0.025, 0, "relative", cb("r")))
  assert(ring:timeout(0, 0, nil, cb("z")))
  drain(ring)
  assert(got.r.res == -ETIME and got.z.res == -ETIME)
  assert(got.r.t - t0 >= 0.025 and got.r.t - t0 < 0.025 + LATE, got.r.t - t0)
  assert(got.z.t - t0 < LATE)
  assert(got.order[2] == "z" and got.order[3] == "r")
  -- Misuse raises.
  helper.raises("seconds must be a number >= 0", ring.timeout, ring, -1)
  helper.raises("number expected", ring.timeout, ring, "soon")
  helper.raises("count must be between 0 and 4294967295", ring.timeout, ring, 1, -1)
  helper.raises("count must be between 0 and 4294967295", ring.timeout, ring, 1, 2^32)
  helper.raises("mode must be 'relative', 'absolute' or 'realtime'",
                ring.timeout, ring, 1, 0, "monotonic")
  assert(ring:in_flight() == 0)
  ring:close()
end)

-- Absolute: seconds on luring.now()'s clock (CLOCK_MONOTONIC); "realtime": the wall
-- clock (5.15). A deadline in the past fires at once.
case("timeout_absolute", function()
  require_op("timeout")
  local ring = luring.queue_init(8, 0)
  local got, cb = recorder()
  local deadline = now() + 0.1
  assert(ring:timeout(deadline, nil, "absolute", cb("abs")))
  -- Were it read as relative, this would wait for the machine's uptime: run gives up.
  assert(ring:run(2) == 0, "absolute timeout did not fire")
  assert(got.abs.res == -ETIME, got.abs.res)
  -- The conversion to a timespec truncates below a nanosecond.
  assert(got.abs.t >= deadline - 1e-6, got.abs.t - deadline)
  assert(got.abs.t < deadline + LATE, got.abs.t - deadline)
  local t0 = now()
  assert(ring:timeout(t0 - 10, nil, "absolute", cb("past")))
  drain(ring)
  assert(got.past.res == -ETIME and now() - t0 < LATE)

  local socket = require "socket"  -- gettime(): the wall clock, as a float
  local wall = socket.gettime() + 0.1
  assert(ring:timeout(wall, 0, "realtime", cb("rt")))
  assert(ring:run(2) == 0, "realtime timeout did not fire")
  if got.rt.res == -luring.errno.EINVAL then
    print("note: the kernel lacks IORING_TIMEOUT_REALTIME (5.15)")
  else
    assert(got.rt.res == -ETIME, got.rt.res)
    local late = socket.gettime() - wall
    assert(late >= -1e-3 and late < LATE, late)  -- gettime has microseconds
  end
  ring:close()
end)

-- count: a timeout with count 2 completes with 0 once two other completions came.
case("timeout_count", function()
  require_op("timeout")
  local ring = luring.queue_init(8, 0)
  local got, cb = recorder()
  local t0 = now()
  assert(ring:timeout(5, 2, nil, cb("t")))
  assert(ring:nop(cb("n1")))
  assert(ring:nop(cb("n2")))
  drain(ring)
  assert(got.t.res == 0, got.t.res)
  assert(now() - t0 < 1, "the count did not end the timeout")
  assert(got.n1.res == 0 and got.n2.res == 0)
  assert(got.order[3] == "t", table.concat(got.order, ","))
  -- One completion is not two: the time runs out.
  got, cb = recorder()
  t0 = now()
  assert(ring:timeout(0.1, 2, nil, cb("t")))
  assert(ring:nop(cb("n1")))
  drain(ring)
  assert(got.t.res == -ETIME, got.t.res)
  assert(got.t.t - t0 >= 0.1 and got.t.t - t0 < 0.1 + LATE)
  ring:close()
end)

case("timeout_remove", function()
  require_op("timeout_remove")
  local ring = luring.queue_init(8, 0)
  local got, cb = recorder()
  local t0 = now()
  local h = assert(ring:timeout(10, nil, nil, cb("t")))
  assert(ring:submit() == 1)
  assert(ring:timeout_remove(h, cb("rm")))
  drain(ring)
  assert(got.rm.res == 0, got.rm.res)
  assert(got.t.res == -ECANCELED, got.t.res)
  assert(now() - t0 < 1)
  -- The timeout is gone: removing it again finds nothing; nor does a nop's handle.
  assert(ring:timeout_remove(h, cb("again")))
  local nop = assert(ring:nop())
  drain(ring)
  assert(got.again.res == -ENOENT, got.again.res)
  assert(luring.timeout_remove(ring, nop, cb("nop")))
  drain(ring)
  assert(got.nop.res == -ENOENT, got.nop.res)
  helper.raises("must be a request handle", ring.timeout_remove, ring, 0)
  helper.raises("number expected", ring.timeout_remove, ring, nil)
  ring:close()
end)

case("link_timeout_alone_raises", function()
  local ring = luring.queue_init(8, 0)
  helper.raises("link_timeout bounds the request linked before it", ring.link_timeout,
                ring, 1, function() end)
  helper.raises("link_timeout bounds the request linked before it", luring.link_timeout,
                ring, 1)
  assert(ring:in_flight() == 0)
  ring:close()
end)

-- ---- poll --------------------------------------------------------------------------

case("poll_add", function()
  require_op("poll_add")
  local ring = luring.queue_init(8, 0)
  local P = luring.poll
  assert(P.IN == 1 and P.OUT == 4 and P.PRI == 2 and P.ERR == 8 and P.HUP == 16)
  assert(P.NVAL == 32 and P.RDHUP == 0x2000)
  helper.raises("luring.poll has no constant 'READ'", function() return P.READ end)
  local a, b = testlib.socketpair()
  local got, cb = recorder()
  -- Nothing to read: it waits.
  assert(ring:poll_add(a, "r", cb("r")))
  assert(ring:run(0.05) == 1 and got.r == nil)
  assert(testlib.write(b, "x") == 1)
  drain(ring)
  assert(got.r.res == P.IN, got.r.res)
  assert(got.r.n == 0)
  -- Writable at once; both when asked both; integers work.
  assert(ring:poll_add(a, "w", cb("w")))
  assert(ring:poll_add(a, "rw", cb("rw")))
  assert(ring:poll_add(a, P.IN | P.OUT, cb("int")))
  drain(ring)
  assert(got.w.res == P.OUT, got.w.res)
  assert(got.rw.res == P.IN | P.OUT, got.rw.res)
  assert(got.int.res == P.IN | P.OUT, got.int.res)
  -- The peer hangs up: IN, HUP and RDHUP (ERR, HUP, RDHUP and NVAL are always
  -- reported, asked for or not).
  assert(testlib.read(a, 10) == "x")
  testlib.close(b)
  assert(ring:poll_add(a, "r", cb("hup")))
  drain(ring)
  assert(got.hup.res == P.IN | P.HUP | P.RDHUP, got.hup.res)
  -- A descriptor that is not open: -EBADF.
  assert(ring:poll_add(1000000, "r", cb("bad")))
  drain(ring)
  assert(got.bad.res == -EBADF, got.bad.res)
  helper.raises('events must be "r", "w" or "rw"', ring.poll_add, ring, a, "x")
  helper.raises('events must be "r", "w" or "rw"', ring.poll_add, ring, a, "")
  helper.raises("events must be luring.poll.* bits", ring.poll_add, ring, a, -1)
  helper.raises("integer or string expected", ring.poll_add, ring, a)
  testlib.close(a)
  ring:close()
end)

case("poll_multishot", function()
  require_op("poll_add")
  require_op("poll_remove")
  local ring = luring.queue_init(8, 0)
  local a, b = testlib.socketpair()
  local calls = {}
  local h = assert(ring:poll_multishot(a, "r", function(cqe, res, more, extra)
    assert(type(cqe) == "userdata" and extra == nil)
    calls[#calls + 1] = { res = res, more = more }
  end))
  assert(ring:run(0.05) == 1 and #calls == 0)
  for i = 1, 2 do
    assert(testlib.write(b, "x") == 1)
    assert(ring:run(0.1) == 1, "the multishot poll ended")
    if i == 1 and calls[1] and calls[1].res == -luring.errno.EINVAL then
      helper.skip("the kernel lacks IORING_POLL_ADD_MULTI (5.13)")
    end
    assert(#calls == i, #calls)
    assert(calls[i].res == luring.poll.IN and calls[i].more == true, calls[i].res)
    assert(testlib.read(a, 10) == "x")
  end
  local removed
  assert(ring:poll_remove(h, function(_, res) removed = res end))
  drain(ring)
  assert(removed == 0, removed)
  assert(#calls == 3)
  assert(calls[3].more == false and calls[3].res == -ECANCELED, calls[3].res)
  -- Removing it again, or something that was never there: -ENOENT.
  assert(ring:poll_remove(h, function(_, res) removed = res end))
  drain(ring)
  assert(removed == -ENOENT, removed)
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

-- ---- cancel ------------------------------------------------------------------------

case("cancel", function()
  require_op("async_cancel")
  require_op("recv")
  local ring = luring.queue_init(8, 0)
  local a, b = testlib.socketpair()
  local got, cb = recorder()
  local h = assert(ring:recv(a, 100, 0, cb("recv")))
  assert(ring:run(0.05) == 1, "recv on an idle socket completed")
  assert(ring:cancel(h, cb("cancel")))
  drain(ring)
  assert(got.cancel.res == 0, got.cancel.res)
  assert(got.recv.res == -ECANCELED and got.recv[1] == "", got.recv.res)
  assert(ring:cancel(h, cb("again")))
  drain(ring)
  assert(got.again.res == -ENOENT, got.again.res)
  -- A timeout can be cancelled too.
  h = assert(ring:timeout(10, nil, nil, cb("t")))
  assert(ring:submit() == 1)
  assert(ring:cancel(h, cb("ct")))
  drain(ring)
  assert(got.ct.res == 0 and got.t.res == -ECANCELED)
  helper.raises("must be a request handle", ring.cancel, ring, -5)
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

case("cancel_fd", function()
  require_op("async_cancel")
  require_op("recv")
  local a, b = testlib.socketpair()
  require_cancel_flag("FD", function(ring, cb) return ring:cancel_fd(a, cb) end)
  local ring = luring.queue_init(8, 0)
  local c, d = testlib.socketpair()
  local got, cb = recorder()
  assert(ring:recv(a, 100, 0, cb("a1")))
  assert(ring:recv(a, 100, 0, cb("a2")))
  assert(ring:recv(c, 100, 0, cb("c")))
  assert(ring:submit() == 3)
  assert(ring:cancel_fd(a, cb("cancel")))
  assert(ring:run(0.05) == 1)
  assert(got.cancel.res == 2, got.cancel.res)
  assert(got.a1.res == -ECANCELED and got.a2.res == -ECANCELED)
  assert(got.c == nil and ring:in_flight() == 1)
  -- Nothing left on a: 0, not an error.
  assert(ring:cancel_fd(a, cb("none")))
  assert(ring:run(0.05) == 1)
  assert(got.none.res == 0, got.none.res)
  assert(testlib.write(d, "still here") == 10)
  drain(ring)
  assert(got.c.res == 10 and got.c[1] == "still here")
  helper.raises("file descriptor out of range", ring.cancel_fd, ring, -1)
  for _, fd in ipairs({ a, b, c, d }) do testlib.close(fd) end
  ring:close()
end)

-- cancel_all counts what it cancelled, never itself (also when it runs in a worker).
case("cancel_all", function()
  require_op("async_cancel")
  require_op("recv")
  require_op("timeout")
  require_cancel_flag("ANY", function(ring, cb) return ring:cancel_all(cb) end)
  local ring = luring.queue_init(16, 0)
  local a, b = testlib.socketpair()
  for _, flags in ipairs({ 0, luring.sqe.ASYNC }) do
    local got, cb = recorder()
    assert(ring:recv(a, 100, 0, cb("r1")))
    assert(ring:recv(b, 100, 0, cb("r2")))
    assert(ring:timeout(10, nil, nil, cb("t")))
    assert(ring:poll_add(a, "r", cb("p")))
    assert(ring:submit() == 4)
    assert(ring:cancel_all(cb("all"), flags))
    drain(ring)
    assert(got.all.res == 4, ("flags %d: %d"):format(flags, got.all.res))
    for _, tag in ipairs({ "r1", "r2", "t", "p" }) do
      assert(got[tag].res == -ECANCELED, tag .. " " .. got[tag].res)
    end
    -- Nothing in flight: 0.
    assert(ring:cancel_all(cb("none"), flags))
    drain(ring)
    assert(got.none.res == 0, got.none.res)
  end
  -- What is queued behind it in the same submission has not started: not cancelled.
  local got, cb = recorder()
  assert(ring:recv(a, 100, 0, cb("before")))
  assert(ring:cancel_all(cb("all")))
  assert(ring:recv(a, 100, 0, cb("behind")))
  assert(ring:run(0.05) == 1)
  assert(got.all.res == 1 and got.before.res == -ECANCELED and got.behind == nil)
  assert(testlib.write(b, "hi") == 2)
  drain(ring)
  assert(got.behind.res == 2 and got.behind[1] == "hi")
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

-- ---- chains (ring:link) ------------------------------------------------------------

-- A recv bounded by a link_timeout on an idle socket: the timeout fires at its
-- deadline and cancels the recv. With data there, the recv wins instead. Both end at
-- the deadline: never before it, and within half of it after (the firing, the cancel
-- and two callbacks; a fixed bound such as LATE failed under TCG, which runs all of it
-- 10-20 times slower). A deadline read in the wrong unit would be 1000 times off; one
-- ignored would leave the recv waiting until drain gives up.
case("link_timeout", function()
  require_op("link_timeout")
  require_op("recv")
  local ring = luring.queue_init(8, 0)
  local a, b = testlib.socketpair()
  local got, cb = recorder()
  local deadline = 0.4
  local t0 = now()
  local h1, h2 = ring:link({ { "recv", a, 100, 0, cb("recv") },
                             { "link_timeout", deadline, cb("lt") } })
  assert(math.type(h1) == "integer" and math.type(h2) == "integer" and h1 ~= h2)
  drain(ring)
  assert(got.recv.res == -ECANCELED, got.recv.res)
  assert(got.lt.res == -ETIME, got.lt.res)
  for _, tag in ipairs({ "recv", "lt" }) do
    local elapsed = got[tag].t - t0
    assert(elapsed >= deadline and elapsed < 1.5 * deadline, tag .. " " .. elapsed)
  end
  got, cb = recorder()
  assert(testlib.write(b, "data") == 4)
  assert(ring:link({ { "recv", a, 100, 0, cb("recv") }, { "link_timeout", 5, cb("lt") } }))
  drain(ring)
  assert(got.recv.res == 4 and got.recv[1] == "data")
  assert(got.lt.res == -ECANCELED, got.lt.res)
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

case("write_fsync", function()
  require_op("fsync")
  local ring = luring.queue_init(8, 0)
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local got, cb = recorder()
  assert(ring:link({ { "write", fd, "chained", 0, cb("write") }, { "fsync", fd, false, cb("fsync") } }))
  drain(ring)
  assert(got.write.res == 7 and got.fsync.res == 0, got.fsync.res)
  assert(got.order[1] == "write" and got.order[2] == "fsync")
  assert(helper.slurp(path) == "chained")
  testlib.close(fd)
  ring:close()
end)

-- CQE_SKIP_SUCCESS on a member of a hard chain: its success posts nothing; the chain
-- still ends whole.
case("cqe_skip_success", function()
  require_op("fsync")
  require_cqe_skip()
  local ring = luring.queue_init(8, 0)
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local skip = luring.sqe.CQE_SKIP_SUCCESS
  local got, cb = recorder()
  assert(ring:link({ { "write", fd, "quiet", 0, cb("write"), skip },
                     { "fsync", fd, false, cb("last") } }, "hard"))
  assert(ring:in_flight() == 2)
  drain(ring)
  assert(got.write == nil, "the silent write called back")
  assert(got.last.res == 0, got.last.res)
  assert(ring:in_flight() == 0)
  assert(helper.slurp(path) == "quiet")
  -- Many rounds: nothing accumulates.
  for _ = 1, 100 do
    assert(ring:link({ { "nop", nil, skip }, { "nop", nil, skip }, { "nop" } }, "hard"))
    drain(ring)
  end
  assert(ring:in_flight() == 0)
  -- Behind a failing member the silent one still runs (a hard chain) and posts nothing.
  got, cb = recorder()
  local dir = directory_fd()
  assert(ring:link({ { "read", dir, 1, 0, cb("bad") }, { "nop", cb("quiet"), skip },
                     { "nop", cb("last") } }, "hard"))
  drain(ring)
  assert(got.bad.res == -EISDIR and got.quiet == nil and got.last.res == 0, got.bad.res)
  assert(ring:in_flight() == 0)
  testlib.close(dir)
  testlib.close(fd)
  ring:close()
end)

-- A silent member that fails in a soft chain makes the kernel post no CQE for the
-- members its failure cancels (REQ_F_SKIP_LINK_CQES, io_fail_links in timeout.c), so
-- nothing would tell they ended: soft chains refuse the flag. In a hard chain a failing
-- silent member posts its CQE and every later member still completes.
-- (The misuse is refused the same way on a kernel without the flag.) The failing member
-- fails when it runs: a write to /dev/full (-ENOSPC).
case("cqe_skip_success_failure", function()
  local ring = luring.queue_init(8, 0)
  local skip = luring.sqe.CQE_SKIP_SUCCESS
  local got, cb = recorder()
  local full = luring.open_file("/dev/full", "w")
  assert(full >= 0, full)
  helper.raises("CQE_SKIP_SUCCESS needs a hard chain", ring.link, ring,
                { { "write", full, "x", 0, cb("bad"), skip }, { "nop", cb("next") } })
  helper.raises("CQE_SKIP_SUCCESS cannot go on link_timeout", ring.link, ring,
                { { "nop", cb("x") }, { "link_timeout", 1, nil, skip } }, "hard")
  assert(ring:in_flight() == 0)
  testlib.close(full)
  require_cqe_skip()
  full = luring.open_file("/dev/full", "w")
  assert(ring:link({ { "write", full, "x", 0, cb("bad"), skip }, { "nop", cb("next") },
                     { "nop", cb("last") } }, "hard"))
  local left = ring:run(2)
  assert(left == 0, left)
  assert(got.bad.res == -luring.errno.ENOSPC, got.bad.res)
  assert(got.next.res == 0 and got.last.res == 0)
  testlib.close(full)
  ring:close()
end)

-- A chain the SQ cannot take whole is not queued at all: nil, nothing in flight, no
-- callback ever.
case("chain_does_not_fit", function()
  local ring = luring.queue_init(4, 0)
  local called = 0
  local function cb() called = called + 1 end
  -- Longer than the whole SQ: it could never fit, so it raises instead of nil forever.
  local chain5 = {}
  for k = 1, 5 do chain5[k] = { "nop", cb } end
  helper.raises("a chain of 5 requests cannot fit in a submission queue of 4 entries",
                ring.link, ring, chain5)
  assert(ring:in_flight() == 0)
  local r
  -- 3 free slots and a 4-chain.
  local ran = false
  assert(ring:nop(function() ran = true end))
  r = table.pack(ring:link({ { "nop", cb }, { "nop", cb }, { "nop", cb }, { "nop", cb } }))
  assert(r.n == 1 and r[1] == nil)
  assert(ring:in_flight() == 1)
  drain(ring)
  assert(ran and called == 0, called)
  -- It fits once there is room.
  r = table.pack(ring:link({ { "nop", cb }, { "nop", cb }, { "nop", cb }, { "nop", cb } }))
  assert(r.n == 4)
  drain(ring)
  assert(called == 4)
  ring:close()
end)

-- A member that fails when it runs cancels the rest of a soft chain; a hard chain goes
-- on (see directory_fd for why it must fail when it runs).
case("hard_links", function()
  local ring = luring.queue_init(8, 0)
  local dir = directory_fd()
  for _, kind in ipairs({ "soft", "hard" }) do
    local got, cb = recorder()
    assert(ring:link({ { "read", dir, 10, 0, cb("bad") }, { "nop", cb("next") },
                       { "nop", cb("last") } }, kind))
    drain(ring)
    assert(got.bad.res == -EISDIR, got.bad.res)
    local want = kind == "hard" and 0 or -ECANCELED
    assert(got.next.res == want and got.last.res == want, kind .. " " .. got.next.res)
  end
  -- The default is soft.
  local got, cb = recorder()
  assert(ring:link({ { "read", dir, 10, 0, cb("bad") }, { "nop", cb("next") } }))
  drain(ring)
  assert(got.bad.res == -EISDIR and got.next.res == -ECANCELED)
  testlib.close(dir)
  ring:close()
end)

case("link_errors", function()
  local ring = luring.queue_init(8, 0)
  local called = false
  local function cb() called = true end
  helper.raises("request 2: 'bogus' is not an op", ring.link, ring,
                { { "nop", cb }, { "bogus", cb } })
  helper.raises("request 1: first field must be an op name", ring.link, ring, { { cb } })
  helper.raises("request 2 is not a table", ring.link, ring, { { "nop", cb }, "nop" })
  helper.raises("link_timeout must follow the request it bounds", ring.link, ring,
                { { "link_timeout", 1, cb }, { "nop", cb } })
  helper.raises("the last request cannot have CQE_SKIP_SUCCESS", ring.link, ring,
                { { "nop", cb }, { "nop", cb, luring.sqe.CQE_SKIP_SUCCESS } }, "hard")
  helper.raises("a chain holds 1 to 64 requests", ring.link, ring, {})
  helper.raises("must be 'soft' (the default) or 'hard'", ring.link, ring, { { "nop" } }, "firm")
  -- A member's own argument errors name the field.
  helper.raises("seconds must be a number >= 0", ring.link, ring,
                { { "nop", cb }, { "timeout", -1, nil, nil, cb } })
  -- A link_timeout not first is fine; one as the only member is first.
  helper.raises("link_timeout must follow", ring.link, ring, { { "link_timeout", 1 } })
  assert(ring:in_flight() == 0)
  assert(ring:run(0.05) == 0 and not called)
  ring:close()
end)

helper.run_cases(cases)
