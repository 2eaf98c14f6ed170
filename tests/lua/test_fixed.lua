-- SPDX-License-Identifier: Apache-2.0
-- Registered files and buffers: ring:register_files gives handles that ops take in
-- place of a descriptor (of this ring and this registration only), read_fixed and
-- write_fixed move bytes through registered buffers, which the ring keeps alive until
-- unregister_buffers or its close, and dropping a registration a request in flight
-- uses is refused. A case whose op the kernel lacks (asked of luring.probe()) skips.
local luring = require "luring"
local helper = require "helper"
local testlib = require "testlib"

local E = luring.errno
local cases = {}

local supported = {}
for _, op in ipairs(luring.probe().ops or {}) do
  if op.supported then supported[op.name] = true end
end

-- A case needing the kernel ops `ops`; it must leave as many descriptors open as it found.
local function case(name, ops, fn)
  cases[#cases + 1] = { name, function()
    for _, op in ipairs(ops) do
      if not supported[op] then helper.skip("the kernel lacks IORING_OP_" .. op:upper()) end
    end
    local base = helper.fd_count()
    fn()
    collectgarbage()
    local now = helper.fd_count()
    assert(now == base, ("descriptors: %d before, %d after"):format(base, now))
  end }
end

-- Runs one request made by `start(cb)` and returns its callback's res and data.
local function one(ring, start)
  local res, data
  assert(start(function(_, r, d) res, data = r, d end), "queue full")
  helper.run_until(ring, function() return res ~= nil end)
  return res, data
end

-- A temporary file holding `content`, opened read/write.
local function temp_file(content)
  local path = helper.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content or "")
  f:close()
  return path, luring.open_file(path, "w")
end

-- Registered buffers count against RLIMIT_MEMLOCK for a user without CAP_IPC_LOCK (64
-- KiB in the 5.10 test VM): the tests register 4 KiB ones, and a case whose registration
-- the limit refuses skips.
local function register_buffers(ring, bufs)
  local res = ring:register_buffers(bufs)
  if res == -E.ENOMEM then
    helper.skip("register_buffers: -ENOMEM (RLIMIT_MEMLOCK is below what 4 KiB buffers take)")
  end
  assert(res == 0, res)
end

case("file_handles", { "read", "write" }, function()
  local ring = luring.queue_init(8)
  local path, fd = temp_file()
  local h = ring:register_files({ -1, fd })
  assert(type(h) == "table" and #h == 2, tostring(h))
  assert(h[1]:index() == 0 and h[2]:index() == 1)
  assert(tostring(h[2]):find("^luring.FixedFile %(index 1, fd " .. fd .. "%)"), tostring(h[2]))
  assert(one(ring, function(cb) return ring:write(h[2], "hello, fixed", 0, cb) end) == 12)
  local res, data = one(ring, function(cb) return ring:read(h[2], 100, 0, cb) end)
  assert(res == 12 and data == "hello, fixed", data)
  assert(one(ring, function(cb) return ring:writev(h[2], { "ab", "cd" }, 12, cb) end) == 4)
  local strs
  res, strs = one(ring, function(cb) return ring:readv(h[2], { 5, 11 }, 0, cb) end)
  assert(res == 16 and strs[1] == "hello" and strs[2] == ", fixedabcd", strs[2])
  assert(one(ring, function(cb) return ring:fsync(h[2], false, cb) end) == 0)
  local b = luring.buffer(4)
  assert(one(ring, function(cb) return ring:read_into(h[2], b, 7, nil, nil, cb) end) == 4)
  assert(b:get() == "fixe")
  assert(one(ring, function(cb) return luring.write_from(ring, h[2], b, 16, nil, nil, cb) end) == 4)
  assert(helper.slurp(path) == "hello, fixedabcdfixe")
  -- The empty slot is a handle too; the kernel has no file there.
  assert(one(ring, function(cb) return ring:read(h[1], 1, 0, cb) end) == -E.EBADF)
  -- A chain takes handles as well.
  local r1, r2
  assert(ring:link {
    { "write", h[2], "XY", 0, function(_, r) r1 = r end },
    { "read", h[2], 2, 0, function(_, r, d) r2 = r == 2 and d end },
  })
  helper.run_until(ring, function() return r2 ~= nil end)
  assert(r1 == 2 and r2 == "XY")
  -- The registration holds the file: reads go on after the descriptor is closed.
  testlib.close(fd)
  res, data = one(ring, function(cb) return ring:read(h[2], 2, 0, cb) end)
  assert(res == 2 and data == "XY")
  ring:close()
end)

case("socketpair", { "recv", "send" }, function()
  local ring = luring.queue_init(8)
  local a, b = testlib.socketpair()
  local h = ring:register_files({ a, b })
  local got
  assert(ring:recv(h[2], 64, 0, function(_, res, data) got = res > 0 and data end))
  assert(one(ring, function(cb) return ring:send(h[1], "ping", 0, cb) end) == 4)
  helper.run_until(ring, function() return got ~= nil end)
  assert(got == "ping")
  local buf = luring.buffer(16)
  buf:set("pong")
  assert(one(ring, function(cb) return ring:send_from(h[2], buf, 0, 4, nil, cb) end) == 4)
  local into = luring.buffer(16)
  assert(one(ring, function(cb) return ring:recv_into(h[1], into, 0, nil, nil, cb) end) == 4)
  assert(into:get(1, 4) == "pong")
  -- Plain descriptors still work beside the handles.
  assert(one(ring, function(cb) return ring:send(a, "!", 0, cb) end) == 1)
  local res, data = one(ring, function(cb) return ring:recv(h[2], 8, 0, cb) end)
  assert(res == 1 and data == "!")
  assert(one(ring, function(cb) return ring:send(h[1], "?", 0, cb) end) == 1)
  assert(one(ring, function(cb) return ring:poll_add(h[2], "r", cb) end) & luring.poll.IN ~= 0)
  assert(one(ring, function(cb) return ring:recv(h[2], 8, 0, cb) end) == 1)
  if supported.shutdown then  -- 5.11
    assert(one(ring, function(cb) return ring:shutdown(h[1], "send", cb) end) == 0)
    assert(one(ring, function(cb) return ring:recv(h[2], 8, 0, cb) end) == 0)
  end
  ring:close()
  testlib.close(a)
  testlib.close(b)
end)

case("stale_handle", { "read" }, function()
  local ring = luring.queue_init(8)
  local _, fd = temp_file("abc")
  local h = ring:register_files({ fd })
  assert(ring:unregister_files() == 0)
  helper.raises("bad argument #1 to 'read' (stale registered file: its registration was dropped)",
                function() return ring:read(h[1], 1, 0) end)
  helper.raises("bad argument #2 to 'read' (stale registered file",
                function() return luring.read(ring, h[1], 1, 0) end)
  -- A new registration does not revive the old handles: slot 0 is the same index.
  local h2 = ring:register_files({ fd })
  helper.raises("stale registered file", function() return ring:read(h[1], 1, 0) end)
  local res, data = one(ring, function(cb) return ring:read(h2[1], 3, 0, cb) end)
  assert(res == 3 and data == "abc")
  assert(ring:in_flight() == 0)
  ring:close()
  testlib.close(fd)
  -- After the close, the handle's ring is closed.
  helper.raises("attempt to use a closed ring", function() return ring:read(h2[1], 1, 0) end)
end)

case("other_ring", { "read" }, function()
  local ring, other = luring.queue_init(8), luring.queue_init(8)
  local _, fd = temp_file("abc")
  local h = ring:register_files({ fd })
  helper.raises("bad argument #1 to 'read' (registered file of another ring)",
                function() return other:read(h[1], 1, 0) end)
  -- Even one with files of its own registered, at the same index.
  other:register_files({ fd })
  helper.raises("bad argument #1 to 'write' (registered file of another ring)",
                function() return other:write(h[1], "x", 0) end)
  helper.raises("registered file of another ring",
                function() return other:link { { "read", h[1], 1, 0, nil } } end)
  assert(other:in_flight() == 0)
  other:close()
  ring:close()
  testlib.close(fd)
end)

-- Where the op cannot take a registered file (IORING_OP_CLOSE, ops done synchronously
-- on older kernels, ops whose descriptor luring reads itself, second descriptors), a
-- handle raises.
case("handle_refused", {}, function()
  local ring = luring.queue_init(8)
  local r, w = testlib.pipe()
  local h = ring:register_files({ r, w })
  local msg = "a registered file cannot stand in for a descriptor here"
  helper.raises("bad argument #1 to 'close_fd' (" .. msg, function() return ring:close_fd(h[1]) end)
  helper.raises("bad argument #1 to 'listen' (" .. msg, function() return ring:listen(h[1]) end)
  helper.raises("bad argument #1 to 'bind' (" .. msg, function() return ring:bind(h[1], "*", 0) end)
  helper.raises("bad argument #1 to 'connect' (" .. msg,
                function() return ring:connect(h[1], "127.0.0.1", 1) end)
  helper.raises("bad argument #1 to 'tee' (" .. msg, function() return ring:tee(h[1], w, 1, 0) end)
  helper.raises("bad argument #3 to 'splice' (" .. msg,
                function() return ring:splice(r, -1, h[2], -1, 1, 0) end)
  helper.raises("bad argument #1 to 'cancel_fd' (" .. msg, function() return ring:cancel_fd(h[1]) end)
  helper.raises("bad argument #1 to 'ftruncate' (" .. msg, function() return ring:ftruncate(h[1], 0) end)
  helper.raises("bad argument #1 to 'statx' (path or file descriptor expected",
                function() return ring:statx(h[1]) end)
  helper.raises("bad argument #1 to 'close_fd_now' (number expected, got luring.FixedFile)",
                function() return luring.close_fd_now(h[1]) end)
  assert(ring:in_flight() == 0)
  ring:close()
  testlib.close(r)
  testlib.close(w)
end)

case("register_errors", {}, function()
  local ring = luring.queue_init(8)
  local r, w = testlib.pipe()
  helper.raises("bad argument #1 to 'register_files' (must hold 1 to 1048576 descriptors)",
                function() return ring:register_files({}) end)
  helper.raises("bad argument #1 to 'register_files' (entry 2 is not a descriptor or -1)",
                function() return ring:register_files({ r, "x" }) end)
  helper.raises("(entry 1 is not a descriptor or -1)", function() return ring:register_files({ -2 }) end)
  helper.raises("(entry 1 is not a descriptor or -1)", function() return ring:register_files({ 1.5 }) end)
  helper.raises("table expected", function() return ring:register_files(r) end)
  helper.raises("bad argument #1 to 'register_buffers' (entry 1 is not a luring.buffer)",
                function() return ring:register_buffers({ "bytes" }) end)
  helper.raises("(must hold 1 to 16384 buffers)", function() return ring:register_buffers({}) end)
  -- Nothing registered: -ENXIO; twice: -EBUSY; the kernel's bad descriptor: -EBADF.
  assert(ring:unregister_files() == -E.ENXIO)
  assert(ring:unregister_buffers() == -E.ENXIO)
  assert(ring:register_files({ 1 << 30 }) == -E.EBADF)
  local h = ring:register_files({ r, w })
  assert(type(h) == "table")
  assert(ring:register_files({ r }) == -E.EBUSY)
  assert(ring:unregister_files() == 0)
  assert(ring:unregister_files() == -E.ENXIO)
  register_buffers(ring, { luring.buffer(4096) })
  assert(ring:register_buffers({ luring.buffer(4096) }) == -E.EBUSY)
  assert(ring:unregister_buffers() == 0)
  assert(ring:unregister_buffers() == -E.ENXIO)
  ring:close()
  helper.raises("attempt to use a closed ring", function() return ring:register_files({ r }) end)
  testlib.close(r)
  testlib.close(w)
end)

-- A bad entry raises whatever the ring's state: with files or buffers registered already
-- the call said -EBUSY instead (found by the fuzzer).
case("bad_entries_when_registered", {}, function()
  local ring = luring.queue_init(8)
  local r, w = testlib.pipe()
  assert(type(ring:register_files({ r })) == "table")
  helper.raises("bad argument #1 to 'register_files' (entry 2 is not a descriptor or -1)",
                function() return ring:register_files({ w, "x" }) end)
  helper.raises("bad argument #2 to 'register_files' (entry 1 is not a descriptor or -1)",
                function() return luring.register_files(ring, { -2 }) end)
  assert(ring:register_files({ w }) == -E.EBUSY)
  local b = luring.buffer(4096)
  register_buffers(ring, { b })
  helper.raises("bad argument #1 to 'register_buffers' (entry 1 is not a luring.buffer)",
                function() return ring:register_buffers({ "bytes" }) end)
  assert(ring:register_buffers({ luring.buffer(16) }) == -E.EBUSY)
  -- The registration in place is untouched by the refused ones.
  local _, fd = temp_file("still")
  assert(one(ring, function(cb) return ring:read_fixed(fd, b, 0, nil, nil, cb) end) == 5)
  assert(b:get(1, 5) == "still")
  ring:close()
  testlib.close(fd)
  testlib.close(r)
  testlib.close(w)
end)

-- A request in flight through a handle: unregister_files says -EBUSY (the kernel would
-- wait for it) until it has completed.
case("unregister_files_busy", { "read" }, function()
  local ring = luring.queue_init(8)
  local r, w = testlib.pipe()
  local h = ring:register_files({ r })
  local got
  assert(ring:read(h[1], 8, -1, function(_, res, data) got = res > 0 and data end))
  assert(ring:submit() == 1)
  assert(ring:unregister_files() == -E.EBUSY)
  testlib.write(w, "data")
  helper.run_until(ring, function() return got ~= nil end)
  assert(got == "data")
  assert(ring:unregister_files() == 0)
  ring:close()
  testlib.close(r)
  testlib.close(w)
end)

-- Up to 6.12 the kernel's files and buffers share one resource node per ring, so
-- dropping either waits for every request that uses a registered file or buffer:
-- a read_fixed on a plain descriptor holds up unregister_files, a read on a handle holds
-- up unregister_buffers (for ever on a quiet pipe). luring says -EBUSY instead.
case("unregister_busy_across_kinds", { "read", "read_fixed" }, function()
  local ring = luring.queue_init(8)
  local r, w = testlib.pipe()
  local h = ring:register_files({ r })
  local b = luring.buffer(4096)
  register_buffers(ring, { b })
  local got
  assert(ring:read_fixed(r, b, -1, 4, nil, function(_, res) got = res end))
  assert(ring:submit() == 1)
  assert(ring:unregister_files() == -E.EBUSY, "unregister_files with a read_fixed in flight")
  testlib.write(w, "data")
  helper.run_until(ring, function() return got ~= nil end)
  assert(got == 4 and b:get(1, 4) == "data")
  got = nil
  assert(ring:read(h[1], 8, -1, function(_, res) got = res end))
  assert(ring:submit() == 1)
  assert(ring:unregister_buffers() == -E.EBUSY, "unregister_buffers with a handle's read in flight")
  testlib.write(w, "more")
  helper.run_until(ring, function() return got ~= nil end)
  assert(got == 4)
  assert(ring:unregister_buffers() == 0 and ring:unregister_files() == 0)
  ring:close()
  testlib.close(r)
  testlib.close(w)
end)

-- A recv_multishot on a handle holds up both unregisters until its last callback, also
-- where luring completes it itself with the errno: before 5.19 there are no provided
-- buffers, and luring queues a NOP for it (Debian's 5.10 said 0 there, 6.18 -EBUSY; found
-- by the fuzzer). Where the kernel runs it, it ends at the end of the stream.
case("unregister_busy_recv_multishot", { "recv" }, function()
  local ring = luring.queue_init(8)
  local a, b = testlib.socketpair()
  local h = ring:register_files({ a })
  register_buffers(ring, { luring.buffer(4096) })
  local last
  assert(ring:recv_multishot(h[1], 0, function(_, res, _, more)
    if not more then last = res end
  end))
  assert(ring:unregister_buffers() == -E.EBUSY, "unregister_buffers with it queued")
  assert(ring:unregister_files() == -E.EBUSY, "unregister_files with it queued")
  assert(ring:submit() == 1)
  assert(ring:unregister_buffers() == -E.EBUSY, "unregister_buffers with it submitted")
  assert(ring:unregister_files() == -E.EBUSY, "unregister_files with it submitted")
  testlib.close(b)
  helper.run_until(ring, function() return last ~= nil end)
  assert(last == 0 or last == -E.EINVAL, last)
  assert(ring:unregister_buffers() == 0 and ring:unregister_files() == 0)
  ring:close()
  testlib.close(a)
end)

case("fixed_round_trip", { "read_fixed", "write_fixed" }, function()
  local ring = luring.queue_init(8)
  local path, fd = temp_file()
  local out, into = luring.buffer(4096), luring.buffer(4096)
  register_buffers(ring, { out, into })
  out:set(("0123456789"):rep(400))
  assert(one(ring, function(cb) return ring:write_fixed(fd, out, 0, nil, nil, cb) end) == 4096)
  assert(helper.slurp(path) == out:get())
  -- Part of a buffer: bytes at..at+len-1, at a file offset.
  assert(one(ring, function(cb) return ring:read_fixed(fd, into, 5, 10, 101, cb) end) == 10)
  assert(into:get(101, 110) == "5678901234" and into:get(1, 100) == ("\0"):rep(100))
  assert(one(ring, function(cb) return luring.write_fixed(ring, fd, into, 8192, 4, 101, cb) end) == 4)
  assert(helper.slurp(path):sub(8193) == "5678")
  -- With a registered file too, and in a chain.
  local h = ring:register_files({ fd })
  out:set("chained!")
  local r1, r2
  assert(ring:link {
    { "write_fixed", h[1], out, 0, 8, nil, function(_, r) r1 = r end },
    { "read_fixed", h[1], into, 0, 8, 4089, function(_, r) r2 = r end },
  })
  helper.run_until(ring, function() return r2 ~= nil end)
  assert(r1 == 8 and r2 == 8 and into:get(4089) == "chained!")
  ring:close()
  testlib.close(fd)
end)

case("fixed_misuse", { "read_fixed" }, function()
  local ring, other = luring.queue_init(8), luring.queue_init(8)
  local _, fd = temp_file("abc")
  local reg, loose = luring.buffer(4096), luring.buffer(4096)
  helper.raises("bad argument #2 to 'read_fixed' (not a registered buffer of this ring",
                function() return ring:read_fixed(fd, reg, 0, nil, nil) end)
  register_buffers(ring, { reg })
  helper.raises("bad argument #2 to 'read_fixed' (not a registered buffer of this ring",
                function() return ring:read_fixed(fd, loose, 0, nil, nil) end)
  helper.raises("bad argument #3 to 'write_fixed' (not a registered buffer of this ring",
                function() return luring.write_fixed(other, fd, reg, 0, nil, nil) end)
  helper.raises("bad argument #4 to 'read_fixed' (length past the end of the buffer)",
                function() return ring:read_fixed(fd, reg, 0, 4097, nil) end)
  helper.raises("bad argument #4 to 'write_fixed' (length past the end of the buffer)",
                function() return ring:write_fixed(fd, reg, 0, 2, 4096) end)
  helper.raises("bad argument #5 to 'read_fixed' (position out of the buffer)",
                function() return ring:read_fixed(fd, reg, 0, nil, 4097) end)
  helper.raises("bad argument #5 to 'read_fixed' (position out of the buffer)",
                function() return ring:read_fixed(fd, reg, 0, nil, 0) end)
  helper.raises("bad argument #2 to 'read_fixed' (luring.Buffer expected, got string)",
                function() return ring:read_fixed(fd, "abc", 0, nil, nil) end)
  helper.raises("not a registered buffer of this ring",
                function() return ring:link { { "read_fixed", fd, loose, 0, nil, nil, nil } } end)
  assert(ring:unregister_buffers() == 0)
  helper.raises("bad argument #2 to 'read_fixed' (not a registered buffer of this ring",
                function() return ring:read_fixed(fd, reg, 0, nil, nil) end)
  assert(ring:in_flight() == 0 and other:in_flight() == 0)
  other:close()
  ring:close()
  testlib.close(fd)
end)

-- Argument checks can run Lua (a table's metamethods) after a handle or a buffer was
-- checked: a registration dropped there is noticed before anything is queued.
case("unregistered_during_checks", { "writev", "read_fixed" }, function()
  local ring = luring.queue_init(8)
  local _, fd = temp_file("abc")
  local h = ring:register_files({ fd })
  local function strings_that(action)
    return setmetatable({}, {
      __len = function() action(); return 1 end,
      __index = function() return "x" end,
    })
  end
  local drops_files = strings_that(function() ring:unregister_files() end)
  helper.raises("bad argument #1 to 'writev' (stale registered file",
                function() return ring:writev(h[1], drops_files, 0) end)
  local buf = luring.buffer(4096)
  register_buffers(ring, { buf })
  helper.raises("not a registered buffer of this ring", function()
    return ring:link {
      { "read_fixed", fd, buf, 0, nil, nil, nil },
      { "writev", fd, strings_that(function() ring:unregister_buffers() end), 0, nil },
    }
  end)
  assert(ring:in_flight() == 0)
  ring:close()
  testlib.close(fd)
end)

-- A metamethod of the buffers' table that registers buffers on the same ring: the outer
-- call says -EBUSY and the inner registration stays whole (its table of buffers was
-- overwritten, and the next read_fixed crashed indexing false).
case("registered_during_register", { "read_fixed" }, function()
  local ring = luring.queue_init(8)
  local _, fd = temp_file("inner")
  local weak = setmetatable({}, { __mode = "v" })
  local inner_res
  do
    local inner = luring.buffer(4096)
    weak[1] = inner
    local tricky = setmetatable({}, {
      __len = function() return 1 end,
      __index = function()
        if inner_res == nil then inner_res = ring:register_buffers({ inner }) end
        return luring.buffer(16)
      end,
    })
    local res = ring:register_buffers(tricky)
    if inner_res == -E.ENOMEM then helper.skip("register_buffers: -ENOMEM (RLIMIT_MEMLOCK)") end
    assert(inner_res == 0, inner_res)
    assert(res == -E.EBUSY, res)
  end
  collectgarbage("collect")
  collectgarbage("collect")
  assert(weak[1] ~= nil, "the inner registration's buffer was collected")
  assert(one(ring, function(cb) return ring:read_fixed(fd, weak[1], 0, nil, nil, cb) end) == 5)
  assert(weak[1]:get(1, 5) == "inner")
  ring:close()
  testlib.close(fd)
end)

-- The ring references its registered buffers: one the program dropped survives the
-- collector, and the kernel still writes the right bytes into it.
case("buffer_kept_alive", { "read_fixed" }, function()
  local ring = luring.queue_init(8)
  local _, fd = temp_file(("x"):rep(100) .. "payload")
  local weak = setmetatable({}, { __mode = "v" })
  do
    local b = luring.buffer(4096)
    weak[1] = b
    register_buffers(ring, { b })
  end
  collectgarbage("collect")
  collectgarbage("collect")
  assert(weak[1] ~= nil, "a registered buffer was collected")
  assert(one(ring, function(cb) return ring:read_fixed(fd, weak[1], 100, nil, nil, cb) end) == 7)
  assert(weak[1]:get(1, 7) == "payload")
  -- Unregistered, it is the program's again: nothing else keeps it.
  assert(ring:unregister_buffers() == 0)
  collectgarbage("collect")
  collectgarbage("collect")
  assert(weak[1] == nil, "unregister_buffers kept the buffer")
  ring:close()
  testlib.close(fd)
end)

-- A read_fixed in flight: unregister_buffers says -EBUSY, and the request's buffer
-- stays alive and is written, however the program drops it.
case("unregister_buffers_busy", { "read_fixed" }, function()
  local ring = luring.queue_init(8)
  local r, w = testlib.pipe()
  local weak = setmetatable({}, { __mode = "v" })
  local res
  do
    local b = luring.buffer(4096)
    weak[1] = b
    register_buffers(ring, { b })
    assert(ring:read_fixed(r, b, -1, 5, nil, function(_, n) res = n end))
  end
  assert(ring:submit() == 1)
  assert(ring:unregister_buffers() == -E.EBUSY)
  collectgarbage("collect")
  collectgarbage("collect")
  testlib.write(w, "hello")
  helper.run_until(ring, function() return res ~= nil end)
  assert(res == 5 and weak[1]:get(1, 5) == "hello")
  assert(ring:unregister_buffers() == 0)
  ring:close()
  testlib.close(r)
  testlib.close(w)
end)

-- Closing a ring with both registered releases them: the buffers are collectable, the
-- descriptors the registration held are closed with it, nothing leaks (ASan's leak check
-- runs at the end of every case in the sanitized build).
case("close_with_registrations", { "read_fixed" }, function()
  local weak = setmetatable({}, { __mode = "v" })
  local a, b = testlib.socketpair()
  local ring = luring.queue_init(8)  -- still referenced after its close
  do
    local h = ring:register_files({ a, b, -1 })
    local bufs = { luring.buffer(4096), luring.buffer(1024) }
    weak[1], weak[2] = bufs[1], bufs[2]
    register_buffers(ring, bufs)
    assert(ring:recv(h[2], 8, 0, nil))  -- in flight at the close: cancelled
    assert(ring:submit() == 1)
    ring:close()
    ring:close()
  end
  collectgarbage("collect")
  collectgarbage("collect")
  assert(next(weak) == nil, "a buffer outlived its ring's close")
  assert(tostring(ring):find("closed"))
  ring = nil
  -- A ring dropped without close does the same through the collector.
  do
    local dropped = luring.queue_init(8)
    dropped:register_files({ a })
    local buf = luring.buffer(4096)
    weak[1] = buf
    register_buffers(dropped, { buf })
  end
  collectgarbage("collect")
  collectgarbage("collect")
  assert(next(weak) == nil, "a buffer outlived its collected ring")
  testlib.close(a)
  testlib.close(b)
end)

helper.run_cases(cases)
