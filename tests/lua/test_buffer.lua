-- SPDX-License-Identifier: Apache-2.0
-- luring.buffer and the ops that use one: read_into, write_from, recv_into, send_from.
-- The bytes land where asked (offset, length, position in the buffer), misuse raises
-- naming the argument, a forged buffer is refused, and a buffer a request uses stays
-- alive until that request's completion even when nothing else refers to it.
local luring = require "luring"
local helper = require "helper"
local testlib = require "testlib"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

local function one(ring, start)
  local got
  assert(start(function(_, res) got = res end), "queue full")
  helper.run_until(ring, function() return got ~= nil end)
  return got
end

case("buffer_methods", function()
  local b = luring.buffer(8)
  assert(#b == 8 and b:get() == ("\0"):rep(8))
  assert(tostring(b):find("^luring.Buffer %(8 bytes%)"))
  assert(b:set("abc") == 4)
  assert(b:set("XY", 7) == 9)
  assert(b:get() == "abc\0\0\0XY")
  assert(b:get(2, 3) == "bc" and b:get(-2) == "XY" and b:get(5, 4) == "" and b:get(0, 100) == b:get())
  helper.raises("do not fit in a buffer of 8", b.set, b, "abc", 7)
  helper.raises("(position out of the buffer)", b.set, b, "", 10)
  assert(b:set("", 9) == 9)  -- nothing, just past the end: fine
  helper.raises("size must be between 1 and 2147479552", luring.buffer, 0)
  helper.raises("number expected", luring.buffer, "x")
  -- Another userdata given the buffer metatable is still not a buffer.
  local ring = luring.queue_init(2)
  debug.setmetatable(ring, getmetatable(b))
  helper.raises("luring.Buffer expected", b.get, ring)
  helper.raises("luring.Buffer expected", b.set, io.stdout, "x")
end)

case("file_read_into_write_from", function()
  local ring = luring.queue_init(8)
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  assert(fd >= 0)
  local b = luring.buffer(16)
  b:set("0123456789abcdef")
  assert(one(ring, function(cb) return ring:write_from(fd, b, 0, nil, nil, cb) end) == 16)
  -- 4 bytes from position 11 of the buffer ("abcd") at file offset 16.
  assert(one(ring, function(cb) return ring:write_from(fd, b, 16, 4, 11, cb) end) == 4)
  assert(helper.slurp(path) == "0123456789abcdefabcd")
  local c = luring.buffer(32)
  c:set(("-"):rep(32))
  -- 6 bytes at offset 14 into position 3.
  assert(one(ring, function(cb) return ring:read_into(fd, c, 14, 6, 3, cb) end) == 6)
  assert(c:get(1, 10) == "--efabcd--")
  -- The whole buffer asked for, 20 bytes there: res says how many.
  assert(one(ring, function(cb) return ring:read_into(fd, c, 0, nil, nil, cb) end) == 20)
  assert(c:get(1, 21) == "0123456789abcdefabcd-")
  assert(one(ring, function(cb) return ring:read_into(fd, c, 100, nil, nil, cb) end) == 0)
  -- Misuse, named.
  helper.raises("length past the end of the buffer", ring.read_into, ring, fd, c, 0, 33)
  helper.raises("length past the end of the buffer", ring.read_into, ring, fd, c, 0, 31, 3)
  helper.raises("position out of the buffer", ring.write_from, ring, fd, c, 0, nil, 33)
  helper.raises("position out of the buffer", ring.write_from, ring, fd, c, 0, nil, 0)
  helper.raises("luring.Buffer expected, got string", ring.write_from, ring, fd, "abc", 0)
  helper.raises("length past the end", ring.read_into, ring, fd, c, 0, -1)
  testlib.close(fd)
  ring:close()
end)

case("socket_recv_into_send_from", function()
  local ring = luring.queue_init(8)
  local a, b = assert(testlib.socketpair())
  local out, into = luring.buffer(64), luring.buffer(64)
  out:set("hello, buffer")
  assert(one(ring, function(cb) return ring:send_from(a, out, 0, 13, nil, cb) end) == 13)
  assert(one(ring, function(cb) return ring:recv_into(b, into, 0, nil, 5, cb) end) == 13)
  assert(into:get(5, 17) == "hello, buffer")
  helper.raises("MSG_TRUNC is not supported", ring.recv_into, ring, b, into, 0x20)  -- MSG_TRUNC
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

-- A buffer that only the request refers to is not collected before its completion:
-- the kernel writes into it when the data comes, and it is freed after.
case("pinned_while_in_flight", function()
  local ring = luring.queue_init(8)
  local rfd, wfd = assert(testlib.pipe())
  local seen = setmetatable({}, { __mode = "k" })
  local done
  do
    local b = luring.buffer(1 << 16)
    seen[b] = true
    assert(ring:read_into(rfd, b, 0, nil, nil, function(_, res) done = res end))
  end
  assert(luring.submit(ring) == 1)
  collectgarbage()
  collectgarbage()
  assert(next(seen) ~= nil, "the buffer was collected while the kernel could write it")
  assert(testlib.write(wfd, ("z"):rep(1000)) == 1000)
  helper.run_until(ring, function() return done ~= nil end)
  assert(done == 1000)
  assert(next(seen):get(1, 1000) == ("z"):rep(1000))
  collectgarbage()
  collectgarbage()
  assert(next(seen) == nil, "the buffer stayed alive after its request ended")
  testlib.close(rfd)
  testlib.close(wfd)
  ring:close()
end)

-- A chain: read into a buffer, then write the same bytes elsewhere, with one submit.
case("linked_copy", function()
  local ring = luring.queue_init(8)
  local from, to = helper.tmpname(), helper.tmpname()
  local f = assert(io.open(from, "wb"))
  f:write(("0123456789"):rep(100))
  f:close()
  local src, dst = luring.open_file(from, "r"), luring.open_file(to, "w")
  local b = luring.buffer(1000)
  local res = {}
  assert(ring:link {
    { "read_into", src, b, 0, nil, nil, function(_, r) res[1] = r end },
    { "write_from", dst, b, 0, nil, nil, function(_, r) res[2] = r end },
  })
  helper.run_until(ring, function() return res[2] ~= nil end)
  assert(res[1] == 1000 and res[2] == 1000)
  assert(helper.slurp(to) == ("0123456789"):rep(100))
  testlib.close(src)
  testlib.close(dst)
  ring:close()
end)

helper.run_cases(cases)
