-- SPDX-License-Identifier: Apache-2.0
-- recv_multishot and the ring's provided buffers (luring.recv_buffers): one request, a
-- callback per chunk with exactly the bytes sent, every buffer handed back to the kernel
-- after its callback (also when the callback raises, or there is none), -ENOBUFS with no
-- byte lost, the final completion at end of stream or cancel, and a close or a fork
-- that leave nothing behind.
local luring = require "luring"
local helper = require "helper"
local testlib = require "testlib"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

local E = luring.errno

-- Kernels before 5.19 have no provided-buffer rings: the kernel's own answer, -EINVAL.
local function buffers(ring, count, size)
  local res = luring.recv_buffers(ring, count, size)
  if res == -E.EINVAL then
    helper.skip("the kernel has no provided-buffer rings (IORING_REGISTER_PBUF_RING: -EINVAL)")
  end
  assert(res == 0, luring.strerror(res))
end

-- Arms a multishot recv on fd that records every call in `calls` ({res, data, more}).
-- Skips if the kernel answers its first completion with -EINVAL (no multishot recv, 6.0).
local function arm(ring, fd, calls)
  return assert(ring:recv_multishot(fd, 0, function(_, res, data, more)
    calls[#calls + 1] = { res = res, data = data, more = more }
  end))
end
local function skip_if_unsupported(calls)
  local first = calls[1]
  if first and first.res == -E.EINVAL and not first.more then
    helper.skip("the kernel has no multishot recv (-EINVAL; IORING_RECV_MULTISHOT is 6.0)")
  end
end

local function send_all(fd, s)
  local sent = 0
  while sent < #s do
    local n = assert(testlib.write(fd, s:sub(sent + 1)))
    sent = sent + n
  end
end

-- Ten messages through four 64-byte buffers, one at a time: each is one callback with
-- exactly its bytes and more = true, so every buffer came back to the kernel (without
-- that the fifth would end the request with -ENOBUFS). The peer's close ends it: res 0.
case("messages_through_few_buffers", function()
  local ring = luring.queue_init(8)
  buffers(ring, 4, 64)
  local a, b = assert(testlib.socketpair())
  local calls = {}
  arm(ring, a, calls)
  assert(luring.submit(ring) == 1)
  for i = 1, 10 do
    local msg = ("message %d "):format(i) .. ("x"):rep(i * 5)
    send_all(b, msg)
    helper.run_until(ring, function() return #calls >= i end)
    skip_if_unsupported(calls)
    local c = calls[i]
    assert(c.res == #msg and c.data == msg and c.more == true,
           ("message %d: res %s, more %s"):format(i, c.res, c.more))
  end
  testlib.close(b)
  helper.run_until(ring, function() return #calls == 11 end)
  assert(calls[11].res == 0 and calls[11].data == "" and calls[11].more == false)
  assert(ring:in_flight() == 0)
  testlib.close(a)
  ring:close()
end)

-- Without recv_buffers the first recv_multishot sets up 64 buffers of 16 KiB: 1 MiB
-- arrives whole and in order, in chunks of at most 16 KiB, while sends of 64 KiB keep
-- coming. A burst that takes every buffer before dispatch hands them back ends the
-- request with -ENOBUFS: armed again, it goes on, and no byte is lost.
case("default_buffers_bulk", function()
  local ring = luring.queue_init(16)
  local a, b = assert(testlib.socketpair())
  local parts = {}
  for i = 1, 4096 do parts[i] = ("%08x"):format((i * 2654435761) % 4294967296):rep(32) end
  local payload = table.concat(parts)  -- 1 MiB, no 256-byte run repeats at a fixed step
  local got, total, biggest, rearmed, sent, ended = {}, 0, 0, 0, 0, false
  local on_data
  function on_data(_, res, data, more)
    if res > 0 then
      assert(res == #data)
      got[#got + 1] = data
      total = total + res
      if res > biggest then biggest = res end
    end
    if not more then
      if res == 0 then
        ended = true  -- the peer closed
        return
      end
      if res == -E.EINVAL and total == 0 then
        helper.skip("the kernel has no multishot recv (-EINVAL; IORING_RECV_MULTISHOT is 6.0)")
      end
      assert(res == -E.ENOBUFS, luring.strerror(res))
      rearmed = rearmed + 1
      assert(ring:recv_multishot(a, 0, on_data))
    end
  end
  assert(ring:recv_multishot(a, 0, on_data))
  local function on_sent(_, res)
    assert(res > 0, luring.strerror(res))
    sent = sent + res
    if sent < #payload then
      assert(ring:send(b, payload:sub(sent + 1, sent + 65536), 0, on_sent))
    end
  end
  assert(ring:send(b, payload:sub(1, 65536), 0, on_sent))
  helper.run_until(ring, function() return total >= #payload end, 20)
  assert(total == #payload and table.concat(got) == payload, "bytes differ")
  assert(biggest <= 16384, biggest)
  io.stderr:write(("%d chunks, largest %d, re-armed %d times\n"):format(#got, biggest, rearmed))
  testlib.close(b)
  helper.run_until(ring, function() return ended end)
  assert(ring:in_flight() == 0)
  testlib.close(a)
  ring:close()
end)

-- Two 16-byte buffers and 100 bytes already waiting: the request fills both, then ends
-- with -ENOBUFS (dispatch had no chance to hand them back). Armed again each time, it
-- brings every byte, in order.
case("enobufs_loses_nothing", function()
  local ring = luring.queue_init(8)
  buffers(ring, 2, 16)
  local a, b = assert(testlib.socketpair())
  local msg = ("0123456789"):rep(10)
  send_all(b, msg)
  local got, nobufs, calls = {}, 0, {}
  local on_data
  function on_data(_, res, data, more)
    calls[#calls + 1] = { res = res, more = more }
    skip_if_unsupported(calls)
    if res > 0 then
      assert(#data == res and res <= 16, res)
      got[#got + 1] = data
    end
    if not more then
      assert(res == -E.ENOBUFS, luring.strerror(res))
      nobufs = nobufs + 1
      assert(ring:recv_multishot(a, 0, on_data))
    end
  end
  assert(ring:recv_multishot(a, 0, on_data))
  helper.run_until(ring, function() return #table.concat(got) >= #msg end)
  assert(table.concat(got) == msg)
  assert(nobufs >= 1, "never ran out of buffers")
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

-- A callback that raises: the error reaches do_cqes, and the buffer still goes back.
-- Two buffers, messages one at a time: the request holds at most one, and the kernel
-- may take the other for its next try before any data comes (6.1 does: with a single
-- buffer it ends the request with -ENOBUFS right after each message). Without the
-- buffer given back, the third message would end it with -ENOBUFS.
case("raising_callback_gives_buffer_back", function()
  local ring = luring.queue_init(8)
  buffers(ring, 2, 64)
  local a, b = assert(testlib.socketpair())
  local calls = {}
  assert(ring:recv_multishot(a, 0, function(_, res, data, more)
    calls[#calls + 1] = { res = res, data = data, more = more }
    skip_if_unsupported(calls)
    if #calls == 1 then error("boom") end
  end))
  assert(luring.submit(ring) == 1)
  send_all(b, "first")
  assert(luring.submit_and_wait(ring, 1) >= 0)
  helper.raises("boom", luring.do_cqes, ring)
  assert(#calls == 1 and calls[1].data == "first" and calls[1].more)
  for i = 2, 4 do
    send_all(b, "message " .. i)
    helper.run_until(ring, function() return #calls == i end)
    assert(calls[i].data == "message " .. i and calls[i].more == true, calls[i].res)
  end
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

-- No callback: the data is dropped, its buffer handed back all the same (two buffers,
-- four messages, as above). After a cancel (-ECANCELED, the final completion), a new
-- request finds the buffers free.
case("no_callback_gives_buffer_back", function()
  local ring = luring.queue_init(8)
  buffers(ring, 2, 64)
  local a, b = assert(testlib.socketpair())
  local h = assert(ring:recv_multishot(a, 0, nil))
  assert(luring.submit(ring) == 1)
  for i = 1, 4 do
    send_all(b, "dropped " .. i)
    assert(luring.submit_and_wait(ring, 1) >= 0)
    assert(luring.do_cqes(ring) >= 1)
  end
  assert(ring:in_flight() == 1)
  local cres
  assert(ring:cancel(h, function(_, res) cres = res end))
  helper.run_until(ring, function() return cres ~= nil and ring:in_flight() == 0 end)
  local calls = {}
  arm(ring, a, calls)
  send_all(b, "kept")
  helper.run_until(ring, function() return #calls == 1 end)
  skip_if_unsupported(calls)
  assert(calls[1].data == "kept" and calls[1].more == true, calls[1].res)
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

-- Cancel ends it with -ECANCELED and more = false, once; nothing after.
case("cancel", function()
  local ring = luring.queue_init(8)
  local a, b = assert(testlib.socketpair())
  local calls = {}
  local h = arm(ring, a, calls)
  send_all(b, "one")
  helper.run_until(ring, function() return #calls == 1 end)
  skip_if_unsupported(calls)
  assert(calls[1].data == "one" and calls[1].more)
  local cres
  assert(ring:cancel(h, function(_, res) cres = res end))
  helper.run_until(ring, function() return #calls == 2 and cres ~= nil end)
  assert(cres == 0 and calls[2].res == -E.ECANCELED and calls[2].more == false)
  send_all(b, "two")
  assert(luring.submit(ring) == 0 and luring.do_cqes(ring) == 0 and #calls == 2)
  assert(ring:in_flight() == 0)
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

-- A ring closed with the request armed and data in its buffers: no callback runs, no
-- descriptor leaks, and the buffers go (ASan would see a use after the unmap).
case("close_ring_armed", function()
  local base = helper.fd_count()
  local ring = luring.queue_init(8)
  local a, b = assert(testlib.socketpair())
  assert(ring:recv_multishot(a, 0, function() error("never called") end))
  assert(luring.submit(ring) == 1)
  send_all(b, "unseen")
  ring:close()
  testlib.close(a)
  testlib.close(b)
  assert(helper.fd_count() == base, ("fds %d -> %d"):format(base, helper.fd_count()))
end)

-- A forked child that closes its copy of the ring must not unregister the parent's
-- buffer group (the same ring in the kernel): the parent's request goes on.
case("fork_child_close_keeps_parent_buffers", function()
  local ring = luring.queue_init(8)
  buffers(ring, 4, 64)
  local a, b = assert(testlib.socketpair())
  local calls = {}
  arm(ring, a, calls)
  send_all(b, "before")
  helper.run_until(ring, function() return #calls == 1 end)
  skip_if_unsupported(calls)
  local pid = assert(testlib.fork())
  if pid == 0 then
    ring:close()
    testlib._exit(0)
  end
  assert(testlib.waitpid(pid) == 0)
  for i = 1, 6 do  -- more messages than buffers: they must still be recycled, too
    send_all(b, "after " .. i)
    helper.run_until(ring, function() return #calls == 1 + i end)
    assert(calls[1 + i].data == "after " .. i and calls[1 + i].more == true, calls[1 + i].res)
  end
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

-- Misuse raises, naming the function and argument; a second set-up is refused.
case("recv_buffers_arguments", function()
  local ring = luring.queue_init(8)
  helper.raises("bad argument #2 to 'luring.recv_buffers' (count must be a power of two",
                luring.recv_buffers, ring, 3, 64)
  helper.raises("count must be a power of two", luring.recv_buffers, ring, 0, 64)
  helper.raises("count must be a power of two", luring.recv_buffers, ring, 65536, 64)
  helper.raises("bad argument #3 to 'luring.recv_buffers' (size must be", luring.recv_buffers, ring, 4, 0)
  helper.raises("size must be", luring.recv_buffers, ring, 4, (1 << 20) + 1)
  helper.raises("number expected", luring.recv_buffers, ring, "x", 64)
  buffers(ring, 8, 128)
  helper.raises("already set up (8 of 128 bytes)", ring.recv_buffers, ring, 8, 128)
  helper.raises("MSG_TRUNC and MSG_WAITALL are not supported", ring.recv_multishot, ring, 0,
                luring.msg.WAITALL, nil)
  helper.raises("bad argument #1 to 'recv_multishot' (number expected, got string)",
                function() return ring:recv_multishot("x", 0, nil) end)
  ring:close()
  helper.raises("closed ring", luring.recv_buffers, ring, 4, 64)
end)

-- In a chain: where the buffers cannot be set up (before 5.19) the request would be a
-- NOP carrying the errno, which would not stop the chain, so link refuses it, naming
-- why; elsewhere it runs linked like any request.
case("linked", function()
  local probe = luring.queue_init(2)
  local can = luring.recv_buffers(probe, 1, 16)
  probe:close()
  local ring = luring.queue_init(8)
  local a, b = assert(testlib.socketpair())
  local calls = {}
  local chain = { { "nop", nil }, { "recv_multishot", a, 0, function(_, res, data, more)
    calls[#calls + 1] = { res = res, data = data, more = more }
  end } }
  if can ~= 0 then
    assert(can == -E.EINVAL, luring.strerror(can))
    helper.raises("recv_multishot cannot be linked on this ring: its provided buffers could " ..
                  "not be set up", ring.link, ring, chain)
    assert(ring:in_flight() == 0)
    print("note: no provided-buffer rings here: the refusal was tested")
  else
    assert(ring:link(chain))
    send_all(b, "linked")
    helper.run_until(ring, function() return #calls == 1 end)
    skip_if_unsupported(calls)
    assert(calls[1].data == "linked" and calls[1].more == true)
  end
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

helper.run_cases(cases)
