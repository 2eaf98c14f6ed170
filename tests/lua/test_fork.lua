-- SPDX-License-Identifier: Apache-2.0
-- fork() with a ring open (reliability case 24). The child shares the ring's memory and
-- descriptor but not its requests: every use of the ring there raises "ring used after
-- fork", and closing it there (queue_exit, the collector, lua_close at exit) must
-- neither cancel, reap, submit nor consume anything of the parent's.
local luring = require "luring"
local helper = require "helper"
local testlib = require "testlib"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

local FORK_ERROR = "ring used after fork"

-- Runs fn in a forked child and returns the child's exit status in the parent. The
-- child ends with _exit (no finalizers) unless fn ends the process itself; an error in
-- fn is written to stderr and makes the status 1.
local function in_child(fn)
  local pid = assert(testlib.fork())
  if pid == 0 then
    local ok, err = pcall(fn)
    if not ok then
      io.stderr:write("in the child: ", tostring(err), "\n")
      io.stderr:flush()
      testlib._exit(1)
    end
    testlib._exit(0)
  end
  return testlib.waitpid(pid)
end

-- A ring with a recv in flight on one end of a socket pair. Returns the ring, the other
-- end, and a function giving the callback's calls, last res and last data.
local function posted_recv()
  local ring = luring.queue_init(8, 0)
  local a, b = assert(testlib.socketpair())
  local calls, got_res, got_data = 0, nil, nil
  assert(ring:recv(a, 64, 0, function(_, res, data)
    calls = calls + 1
    got_res, got_data = res, data
  end))
  assert(ring:submit() == 1)
  return ring, b, function() return calls, got_res, got_data end
end

-- After the child: the parent's recv is still in flight, then gets the data written to
-- the peer, exactly once.
local function parent_recv_intact(ring, peer, result)
  assert(ring:do_cqes() == 0, "a completion arrived before any data was sent")
  assert((result()) == 0)
  assert(tostring(ring):find(" 1 in flight"), tostring(ring))
  assert(testlib.write(peer, "after the child") == 15)
  helper.run_until(ring, function() return (result()) > 0 end)
  local calls, res, data = result()
  assert(calls == 1, calls)
  assert(res == 15, "the parent's recv ended with " .. tostring(res) .. ": " ..
         (res and res < 0 and luring.strerror(res) or ""))
  assert(data == "after the child", data)
  assert(ring:do_cqes() == 0)
  assert(tostring(ring):find(" 0 in flight"), tostring(ring))
  ring:close()
end

-- Every entry point that takes the ring raises in the child, in both call forms, before
-- touching the kernel.
local function all_raise(ring)
  local fd = 0
  helper.raises(FORK_ERROR, luring.do_cqes, ring)
  helper.raises(FORK_ERROR, luring.submit, ring)
  helper.raises(FORK_ERROR, luring.submit_and_wait, ring, 1)
  helper.raises(FORK_ERROR, luring.cqe_seen, ring, nil)
  helper.raises(FORK_ERROR, luring.write, ring, fd, "x", 0)
  helper.raises(FORK_ERROR, luring.read, ring, fd, 1, 0)
  helper.raises(FORK_ERROR, luring.recv, ring, fd, 1, 0)
  helper.raises(FORK_ERROR, luring.send, ring, fd, "x", 0)
  helper.raises(FORK_ERROR, luring.accept, ring, fd, 0)
  helper.raises(FORK_ERROR, ring.do_cqes, ring)
  helper.raises(FORK_ERROR, function() return ring:submit() end)
  -- The message names the function and the argument, like any bad argument.
  local msg = helper.raises("bad argument #1 to '", luring.do_cqes, ring)
  assert(msg:find(FORK_ERROR, 1, true), msg)
end

-- The child raises on every use, drops the ring and lets the collector close it.
case("child_collects", function()
  local ring, peer, result = posted_recv()
  local status = in_child(function()
    all_raise(ring)
    local weak = setmetatable({ ring }, { __mode = "v" })
    ring = nil
    collectgarbage()
    collectgarbage()
    assert(weak[1] == nil, "the ring was not collected in the child")
  end)
  assert(status == 0, "child status " .. tostring(status))
  parent_recv_intact(ring, peer, result)
end)

-- The child calls queue_exit (twice, and close): closed there, untouched here.
case("child_queue_exit", function()
  local ring, peer, result = posted_recv()
  local status = in_child(function()
    helper.raises(FORK_ERROR, luring.do_cqes, ring)
    helper.raises(FORK_ERROR, luring.submit, ring)
    luring.queue_exit(ring)
    luring.queue_exit(ring)
    ring:close()
    assert(tostring(ring):find("closed"), tostring(ring))
    helper.raises("closed ring", luring.do_cqes, ring)
  end)
  assert(status == 0, "child status " .. tostring(status))
  assert(not tostring(ring):find("closed"), "the child's queue_exit closed the parent's ring")
  parent_recv_intact(ring, peer, result)
end)

-- The child ends normally with the ring open: os.exit(0, true) runs lua_close, whose
-- finalizers close the ring there.
case("child_lua_close", function()
  local ring, peer, result = posted_recv()
  local status = in_child(function()
    helper.raises(FORK_ERROR, luring.do_cqes, ring)
    os.exit(0, true)
  end)
  assert(status == 0, "child status " .. tostring(status))
  parent_recv_intact(ring, peer, result)
end)

-- A completion already in the CQ at fork time: the child's close must not consume it
-- (the CQ head is in memory both processes share), so the parent still handles it.
case("child_leaves_cq", function()
  local ring, peer, result = posted_recv()
  assert(testlib.write(peer, "before the fork") == 15)
  assert(ring:submit_and_wait(1) == 0)  -- the CQE is posted, not yet handled
  local status = in_child(function()
    all_raise(ring)
    luring.queue_exit(ring)
  end)
  assert(status == 0, "child status " .. tostring(status))
  assert(ring:do_cqes() == 1)
  local calls, res, data = result()
  assert(calls == 1 and res == 15 and data == "before the fork", tostring(data))
  assert(ring:do_cqes() == 0)
  ring:close()
end)

-- An SQE queued but not submitted at fork time: the child's close must not submit it
-- (the SQ tail is shared too); the parent's submit does, once.
case("child_leaves_sq", function()
  local ring = luring.queue_init(8, 0)
  local rfd, wfd = assert(testlib.pipe())
  local calls, got = 0, nil
  assert(ring:write(wfd, "queued before the fork", 0, function(_, res)
    calls = calls + 1
    got = res
  end))
  local status = in_child(function()
    helper.raises(FORK_ERROR, luring.submit, ring)
    ring = nil
    collectgarbage()
    collectgarbage()
  end)
  assert(status == 0, "child status " .. tostring(status))
  assert(ring:submit() == 1, "the SQE was submitted (or lost) by the child")
  helper.run_until(ring, function() return calls > 0 end)
  assert(calls == 1 and got == 22, tostring(got))
  assert(testlib.read(rfd, 100) == "queued before the fork")
  ring:close()
  assert(testlib.close(rfd) and testlib.close(wfd))
end)

-- The child can make and use rings of its own while the parent's raises.
case("child_own_ring", function()
  local ring, peer, result = posted_recv()
  local status = in_child(function()
    helper.raises(FORK_ERROR, luring.do_cqes, ring)
    local mine = luring.queue_init(4, 0)
    local rfd, wfd = assert(testlib.pipe())
    local got
    assert(mine:write(wfd, "child's own", 0))
    assert(mine:read(rfd, 64, 0, function(_, _, data) got = data end))
    helper.run_until(mine, function() return got ~= nil end)
    assert(got == "child's own", got)
    -- A grandchild sees the child's ring as foreign too.
    local inner = in_child(function()
      helper.raises(FORK_ERROR, luring.do_cqes, mine)
    end)
    assert(inner == 0, "grandchild status " .. tostring(inner))
    assert(mine:submit() == 0)  -- still the child's own
    mine:close()
  end)
  assert(status == 0, "child status " .. tostring(status))
  parent_recv_intact(ring, peer, result)
end)

-- fork() inside a callback, in the middle of a batch larger than one copy from the CQ
-- (64 CQEs). The child returns from the callback into the parent's do_cqes: there it
-- must run no further callback and must not take CQEs. Taking them moves the CQ head,
-- which the parent shares: the kernel then reuses CQ entries the parent has not read.
-- Here it does: the CQ has 128 entries, the parent waits for the child inside the
-- forking callback with 36 write CQEs unread, and the child, once do_cqes has returned,
-- sends to all 128 recvs' peers, whose CQEs the kernel posts while the parent still
-- waits. The parent must still get every completion: all 100 writes and all 128 recvs.
case("fork_in_callback", function()
  testlib.alarm(60)  -- a lost completion must not hang the case for good (nor waitpid)
  local base = helper.fd_count()
  local nrecv, nwrite, fork_at = 128, 100, 10
  local ring = luring.queue_init(128, { cq_entries = 128 })
  assert(tostring(ring):find("sq 128, cq 128"), tostring(ring))
  local rfd, wfd = assert(testlib.pipe())
  local report_r, report_w = assert(testlib.pipe())
  local parent_pid = testlib.getpid()
  local peers = {}
  local calls, writes, recvs, got = 0, 0, 0, {}
  local at_fork, child_pid
  local in_child = false
  for i = 1, nrecv do
    local a, b = assert(testlib.socketpair())
    peers[i] = { a, b }
    assert(ring:recv(a, 64, 0, function(_, res, data)
      calls = calls + 1
      recvs = recvs + 1
      assert(res == #data, res)
      got[i] = (got[i] or "") .. data
    end))
  end
  assert(ring:submit() == nrecv)
  for i = 1, nwrite do
    assert(ring:write(wfd, ("w%03d"):format(i), 0, function(_, res)
      calls = calls + 1
      writes = writes + 1
      assert(res == 4, res)
      if writes ~= fork_at then return end
      at_fork = calls
      local pid = assert(testlib.fork())
      if pid == 0 then
        in_child = true
        return  -- back into the parent's do_cqes, in the child
      end
      child_pid = pid
      -- The parent waits here: the child runs alone with the parent's CQEs unread.
      local status = testlib.waitpid(pid)
      assert(status == 0, "child status " .. tostring(status))
    end))
  end
  assert(ring:submit() == nwrite)
  local deadline = os.time() + 10
  while ring:wait(nwrite, 1) < nwrite do
    assert(os.time() < deadline, "the writes did not complete")
  end
  assert(ring:in_flight() == nrecv + nwrite)

  local ok, err = pcall(ring.do_cqes, ring)
  if in_child then
    -- do_cqes returned in the child. Say how many callbacks ran after the fork and
    -- whether the ring now raises, send to every recv's peer, and end without
    -- finalizers (the ring is the parent's).
    local still = select(2, pcall(ring.do_cqes, ring))
    local report = ("%s %d %s\n"):format(tostring(ok), calls - at_fork,
      tostring(still):find("ring used after fork", 1, true) and "raises" or tostring(still))
    for i = 1, nrecv do testlib.write(peers[i][2], "to " .. i) end
    testlib.write(report_w, report)
    testlib._exit(0)
  end
  assert(testlib.getpid() == parent_pid)
  assert(ok, err)
  assert(child_pid, "no callback forked")
  local report = testlib.read(report_r, 100)
  local child_ok, extra, after = report:match("^(%S+) (%d+) (%S+)\n$")
  assert(child_ok == "true", "do_cqes raised in the child: " .. report)
  assert(tonumber(extra) == 0, ("the child ran %s callbacks after the fork"):format(extra))
  assert(after == "raises", "do_cqes in the child afterwards: " .. report)

  -- The parent gets every completion (bounded: a lost one never comes).
  deadline = os.time() + 10
  while (writes < nwrite or recvs < nrecv) and os.time() < deadline do
    local ready = ring:wait(1, 0.2)
    assert(ready >= 0 or ready == -luring.errno.ETIME or ready == -luring.errno.EINTR, ready)
    ring:do_cqes()
  end
  assert(writes == nwrite, ("the parent handled %d of %d write completions"):format(writes, nwrite))
  assert(recvs == nrecv, ("the parent handled %d of %d recv completions"):format(recvs, nrecv))
  for i = 1, nrecv do assert(got[i] == "to " .. i, ("recv %d got %q"):format(i, got[i])) end
  local seen, data = {}, testlib.read(rfd, 4 * nwrite + 1)
  assert(#data == 4 * nwrite, #data)
  for piece in data:gmatch("w(%d%d%d)") do
    assert(not seen[piece], "written twice: " .. piece)
    seen[piece] = true
  end
  assert(calls == nwrite + nrecv, calls)
  assert(ring:in_flight() == 0 and ring:do_cqes() == 0)
  assert(ring:submit_and_wait(1) == 0)  -- nothing owed: returns at once
  ring:close()
  assert(tostring(ring):find("closed"))
  for i = 1, nrecv do assert(testlib.close(peers[i][1]) and testlib.close(peers[i][2])) end
  for _, fd in ipairs({ rfd, wfd, report_r, report_w }) do assert(testlib.close(fd)) end
  assert(helper.fd_count() == base, ("fds %d -> %d"):format(base, helper.fd_count()))
  testlib.alarm(0)
end)

helper.run_cases(cases)
