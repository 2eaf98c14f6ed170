-- SPDX-License-Identifier: Apache-2.0
-- The data path: exact read/recv data, offsets, accept's peer address, open_file.
local luring = require "luring"
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

-- Each case makes its ring and closes it at the end (every case runs in its own process).
local ring
local function setup() ring = luring.queue_init(16, 0) end

-- Runs one request made by `start(cb)` and returns its callback's arguments.
local function one(start)
  local got
  assert(start(function(...) got = table.pack(...) end), "queue full")
  helper.run_until(ring, function() return got ~= nil end)
  return table.unpack(got, 1, got.n)
end

-- read: exactly res bytes (a short read at EOF), "" at EOF, "" on errors.
case("read_exact", function()
  setup()
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local text = string.rep("0123456789", 100)  -- 1000 bytes
  local _, res = one(function(cb) return luring.write(ring, fd, text, 0, cb) end)
  assert(res == 1000)
  local cqe, n, data = one(function(cb) return luring.read(ring, fd, 4096, 0, cb) end)
  assert(type(cqe) == "userdata", type(cqe))
  assert(n == 1000 and #data == 1000 and data == text)
  _, n, data = one(function(cb) return luring.read(ring, fd, 4096, 1000, cb) end)
  assert(n == 0 and data == "")
  _, n, data = one(function(cb) return luring.read(ring, fd, 0, 0, cb) end)
  assert(n == 0 and data == "")
  -- A bad fd: -EBADF and no data, never buffer contents.
  _, n, data = one(function(cb) return luring.read(ring, 1000000, 4096, 0, cb) end)
  assert(n == -luring.errno.EBADF and data == "", n)
  -- Reads reuse buffers: stale bytes from a longer read never leak into a shorter one.
  local p2 = helper.tmpname()
  local fd2 = luring.open_file(p2, "w+")
  one(function(cb) return luring.write(ring, fd2, "xy", 0, cb) end)
  for _ = 1, 20 do
    _, n, data = one(function(cb) return luring.read(ring, fd, 4096, 0, cb) end)
    assert(#data == 1000)
    _, n, data = one(function(cb) return luring.read(ring, fd2, 4096, 0, cb) end)
    assert(n == 2 and data == "xy", data)
  end
  ring:close()
end)

-- Offsets: -1 means the file position, so two writes append; below -1 is refused.
case("offsets", function()
  setup()
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local _, res = one(function(cb) return luring.write(ring, fd, "abc", -1, cb) end)
  assert(res == 3)
  _, res = one(function(cb) return luring.write(ring, fd, "def", -1, cb) end)
  assert(res == 3)
  local f = assert(io.open(path))
  assert(f:read("a") == "abcdef")
  f:close()
  helper.raises("bad argument #4 to", luring.write, ring, fd, "x", -2)
  -- A large offset is fine (sparse file).
  _, res = one(function(cb) return luring.write(ring, fd, "z", 2^40, cb) end)
  assert(res == 1)
  -- A pipe works with offset 0.
  local rfd, wfd = helper.fifo()
  _, res = one(function(cb) return luring.write(ring, wfd, "pipe", 0, cb) end)
  assert(res == 4)
  local _, n, data = one(function(cb) return luring.read(ring, rfd, 100, 0, cb) end)
  assert(n == 4 and data == "pipe")
  ring:close()
end)

-- write accepts numbers as content (Lua's usual string coercion).
case("number_content", function()
  setup()
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local _, res = one(function(cb) return luring.write(ring, fd, 12.5, 0, cb) end)
  assert(res == 4)
  ring:close()
end)

-- send/recv over loopback TCP: exactly what was sent.
case("send_recv", function()
  setup()
  local client, peer = helper.tcp_pair()
  local cfd, pfd = client:getfd(), peer:getfd()
  local _, res = one(function(cb) return luring.send(ring, cfd, "hello", 0, cb) end)
  assert(res == 5)
  local _, n, data = one(function(cb) return luring.recv(ring, pfd, 4096, 0, cb) end)
  assert(n == 5 and data == "hello", data)
  -- MSG_PEEK leaves the data for the next recv.
  one(function(cb) return luring.send(ring, cfd, "again", luring.msg.NOSIGNAL, cb) end)
  _, n, data = one(function(cb) return luring.recv(ring, pfd, 3, luring.msg.PEEK, cb) end)
  assert(data == "aga")
  _, n, data = one(function(cb) return luring.recv(ring, pfd, 100, 0, cb) end)
  assert(data == "again")
  -- The peer closes: recv gives 0 and "".
  client:close()
  _, n, data = one(function(cb) return luring.recv(ring, pfd, 100, 0, cb) end)
  assert(n == 0 and data == "")
  peer:close()
  ring:close()
end)

-- accept: the new fd, close-on-exec, and the peer's full address as third argument.
local function cloexec(fd)
  local f = io.open("/proc/self/fdinfo/" .. fd)
  if not f then return nil end
  local flags = f:read("a"):match("flags:%s*(%d+)")
  f:close()
  return (tonumber(flags, 8) & tonumber("2000000", 8)) ~= 0
end

case("accept", function()
  setup()
  local socket = require "socket"
  -- IPv4
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  local got_fd, peer
  assert(luring.accept(ring, server:getfd(), 0, function(cqe, res, addr)
    got_fd, peer = res, addr
  end))
  assert(luring.submit(ring) == 1)
  local client = assert(socket.connect("127.0.0.1", port))
  helper.run_until(ring, function() return got_fd ~= nil end)
  assert(got_fd >= 0, got_fd)
  assert(peer.family == "inet" and peer.address == "127.0.0.1", peer.address)
  local _, cport = client:getsockname()
  assert(peer.port == tonumber(cport))
  assert(cloexec(got_fd) == true)
  -- The accepted fd works with luring.
  client:send("over accept")
  local _, n, data = one(function(cb) return luring.recv(ring, got_fd, 100, 0, cb) end)
  assert(n == #"over accept" and data == "over accept")
  client:close()
  server:close()

  -- IPv6 loopback, when the host has it (28-byte addresses: luring 0.1 overran 16 bytes).
  local server6 = socket.tcp6 and socket.tcp6()
  if server6 and server6:bind("::1", 0) and server6:listen(4) then
    local _, port6 = server6:getsockname()
    got_fd, peer = nil, nil
    luring.accept(ring, server6:getfd(), 0, function(_, res, addr) got_fd, peer = res, addr end)
    luring.submit(ring)
    local c6 = socket.tcp6()
    assert(c6:connect("::1", port6))
    helper.run_until(ring, function() return got_fd ~= nil end)
    assert(got_fd >= 0 and peer.family == "inet6" and peer.address == "::1")
    c6:close()
    server6:close()
  else
    print("note: no IPv6 loopback here, IPv6 accept not tested")
  end

  -- AF_UNIX: the unnamed client peer has an empty path.
  local ok_unix, unix = pcall(require, "socket.unix")
  if ok_unix then
    local path = helper.tmpname()
    os.remove(path)
    local us = assert(unix())
    assert(us:bind(path))
    assert(us:listen(4))
    got_fd, peer = nil, nil
    luring.accept(ring, us:getfd(), 0, function(_, res, addr) got_fd, peer = res, addr end)
    luring.submit(ring)
    local uc = assert(unix())
    assert(uc:connect(path))
    helper.run_until(ring, function() return got_fd ~= nil end)
    assert(got_fd >= 0 and peer.family == "unix" and peer.path == "")
    uc:close()
    us:close()
  end

  -- A failed accept gets res < 0 and nil.
  got_fd, peer = nil, 1
  luring.accept(ring, 1000000, 0, function(_, res, addr) got_fd, peer = res, addr end)
  helper.run_until(ring, function() return got_fd ~= nil end)
  assert(got_fd == -luring.errno.EBADF and peer == nil)
  ring:close()
end)

-- open_file: the modes of luring 0.1's README, -errno on failure, close-on-exec.
case("open_file", function()
  setup()
  local path = helper.tmpname()
  local fd = luring.open_file(path)  -- default "w": read/write, create, keep content
  assert(fd >= 0 and cloexec(fd))
  one(function(cb) return luring.write(ring, fd, "keep", 0, cb) end)
  fd = luring.open_file(path, "w")
  local _, _, data = one(function(cb) return luring.read(ring, fd, 10, 0, cb) end)
  assert(data == "keep")
  fd = luring.open_file(path, "w+")  -- truncates
  _, _, data = one(function(cb) return luring.read(ring, fd, 10, 0, cb) end)
  assert(data == "")
  local afd = luring.open_file(path, "a")  -- write only, appends
  one(function(cb) return luring.write(ring, afd, "1", 0, cb) end)
  one(function(cb) return luring.write(ring, afd, "2", 0, cb) end)
  local _, res = one(function(cb) return luring.read(ring, afd, 10, 0, cb) end)
  assert(res == -luring.errno.EBADF)  -- not readable
  local rfd = luring.open_file(path, "r")
  _, _, data = one(function(cb) return luring.read(ring, rfd, 10, 0, cb) end)
  assert(data == "12", data)
  _, res = one(function(cb) return luring.write(ring, rfd, "x", 0, cb) end)
  assert(res == -luring.errno.EBADF)  -- read only
  afd = luring.open_file(path, "a+")  -- truncates, appends
  one(function(cb) return luring.write(ring, afd, "3", 0, cb) end)
  _, _, data = one(function(cb) return luring.read(ring, rfd, 10, 0, cb) end)
  assert(data == "3")
  assert(luring.open_file("/nonexistent/dir/file", "r") == -luring.errno.ENOENT)
  helper.raises("bad argument #2 to", luring.open_file, path, "rw")
  helper.raises("bad argument #1 to", luring.open_file, "a\0b", "r")
  -- Permissions rw-rw-r-- before umask.
  local p3 = helper.tmpname()
  os.remove(p3)
  luring.open_file(p3, "w")
  local stat = io.popen("stat -c %a " .. p3):read("l")
  local umask = tonumber(io.popen("sh -c umask"):read("l"), 8)
  assert(tonumber(stat, 8) == (tonumber("664", 8) & ~umask), stat)
  ring:close()
end)

-- fd 0 is a valid answer (luring 0.1 called it a failure): run with stdin closed.
case("fd_zero", function()
  local script = helper.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(([[
    package.cpath = %q
    local luring = require "luring"
    local fd = luring.open_file(%q, "r")
    os.exit(fd == 0 and 0 or 3)
  ]]):format(package.cpath, script))
  f:close()
  local ok, _, code = os.execute("lua5.4 " .. script .. " <&-")
  assert(ok and code == 0, "open_file did not return fd 0 with stdin closed: " .. tostring(code))
end)

-- A __gc finalizer that runs while do_cqes pushes a callback's arguments (a GC step
-- inside a Lua API call can land there) and queues I/O into the same ring must not get
-- the slot of the accept being handled: were the slot released before the push (as it
-- was), the finalizer's read would take it and the kernel would write zeros over the
-- peer address before it is pushed. The test hook (luring._test_gc_on_push) runs a full
-- collection, finalizers included, exactly there, so this is no longer left to chance.
case("accept_finalizer_reuses_slot", function()
  local base = helper.fd_count()
  setup()
  local socket = require "socket"
  local testlib = require "testlib"
  local srv = assert(socket.tcp())
  assert(srv:bind("127.0.0.1", 0))
  assert(srv:listen(64))
  local _, port = srv:getsockname()
  local zero = luring.open_file("/dev/zero", "r")
  luring._test_gc_on_push(ring, true)

  local armed, accepted = false, false
  local finalized, errors, zeros, queued = 0, {}, 0, 0
  -- A finalizer queues a read of /dev/zero into the ring and waits until the kernel
  -- has written it: the slot it got is overwritten with zeros now, not later.
  local function finalizer()
    if not armed then return end
    finalized = finalized + 1
    if accepted then errors[#errors + 1] = "finalizer ran after the callback" end
    local ok, err = pcall(function()
      assert(ring:read(zero, 64, 0, function(_, res, data)
        assert(res == 64 and data == string.rep("\0", 64), res)
        zeros = zeros + 1
      end))
      -- Every read queued so far has completed (the accept's CQE is already out of
      -- the CQ, so only these can be counted).
      queued = queued + 1
      assert(ring:wait(queued, 5) == queued, "the finalizer's read did not complete")
    end)
    if not ok then errors[#errors + 1] = tostring(err) end  -- __gc errors are only warnings
  end

  for round = 1, 20 do
    local peer_got
    accepted = false
    assert(ring:accept(srv:getfd(), 0, function(_, res, peer)
      accepted = true
      assert(res >= 0, res)
      peer_got = peer
      assert(testlib.close(res))
    end))
    assert(ring:submit() == 1)
    local client = assert(socket.tcp())
    assert(client:connect("127.0.0.1", port))
    local _, cport = client:getsockname()
    assert(ring:wait(1, 5) == 1, "no connection accepted")
    -- Garbage with finalizers, collected only by the hook's collection at the push.
    collectgarbage("stop")
    local before = finalized
    queued = 0
    for _ = 1, 3 do setmetatable({}, { __gc = finalizer }) end
    armed = true
    assert(ring:do_cqes() == 1)
    armed = false
    collectgarbage("restart")
    assert(#errors == 0, errors[1])
    assert(finalized - before == 3, ("round %d: %d finalizers ran in the push"):format(
      round, finalized - before))
    assert(accepted, "the accept's callback did not run")
    assert(peer_got.family == "inet", ("round %d: peer family %s: the finalizer's read " ..
      "wrote over the accept's address"):format(round, tostring(peer_got.family)))
    assert(peer_got.address == "127.0.0.1", peer_got.address)
    assert(peer_got.port == tonumber(cport), ("port %s, client's %s"):format(peer_got.port, cport))
    -- The finalizers' reads complete, each with its own 64 zero bytes.
    local want = zeros + 3
    helper.run_until(ring, function() return zeros == want end)
    client:close()
  end
  assert(ring:in_flight() == 0)
  luring._test_gc_on_push(ring, false)
  ring:close()
  srv:close()
  assert(testlib.close(zero))
  assert(helper.fd_count() == base, ("fds %d -> %d"):format(base, helper.fd_count()))
end)

-- recv never hands over more than was asked for, nor another request's bytes:
-- MSG_TRUNC (the kernel reports the full length, copies less or nothing) is refused.
case("recv_no_trunc", function()
  setup()
  local client, peer = helper.tcp_pair()
  helper.raises("bad argument #4 to 'luring.recv' (MSG_TRUNC is not supported)",
                luring.recv, ring, peer:getfd(), 4, 0x20)
  assert(rawget(luring.msg, "TRUNC") == nil)
  -- Fill a slot's buffer with a secret, then a short recv on the same slot.
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  one(function(cb) return luring.write(ring, fd, string.rep("SECRET-", 500), 0, cb) end)
  one(function(cb) return luring.read(ring, fd, 3500, 0, cb) end)
  client:send("hello")
  local _, n, data = one(function(cb) return luring.recv(ring, peer:getfd(), 4, 0, cb) end)
  assert(n == 4 and data == "hell", data)
  client:close()
  peer:close()
end)

-- Closing a ring whose accepts completed unseen closes the accepted connections, and an
-- accept without a callback does not leak its descriptor either.
case("accept_no_fd_leak", function()
  local socket = require "socket"
  local srv = assert(socket.tcp())
  assert(srv:bind("127.0.0.1", 0))
  assert(srv:listen(64))
  local _, port = srv:getsockname()
  local clients = {}
  for i = 1, 20 do
    clients[i] = socket.tcp()
    assert(clients[i]:connect("127.0.0.1", port))
  end
  local base = helper.fd_count()
  for _ = 1, 10 do  -- completed, never handled, then the ring is closed
    local r = luring.queue_init(8, 0)
    assert(luring.accept(r, srv:getfd(), 0, function() error("never called") end))
    assert(luring.submit_and_wait(r, 1) == 1)
    luring.queue_exit(r)
  end
  assert(helper.fd_count() == base, ("fds %d -> %d"):format(base, helper.fd_count()))
  local r = luring.queue_init(16, 0)
  for _ = 1, 10 do assert(luring.accept(r, srv:getfd(), 0)) end  -- no callbacks
  assert(luring.submit_and_wait(r, 10) == 10)
  assert(luring.do_cqes(r) == 10)
  r:close()
  assert(helper.fd_count() == base, ("fds %d -> %d"):format(base, helper.fd_count()))
  for _, c in ipairs(clients) do c:close() end
  srv:close()
end)

-- readv fills one string per size in order, exactly res bytes in all; writev writes its
-- strings in order, even when the caller changes its table or the strings are collected.
case("readv_writev", function()
  setup()
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local big = string.rep("B", 5000)  -- pinned, not copied
  local parts = { "alpha-", big, "", "-omega" }
  local _, res = one(function(cb) return ring:writev(fd, parts, 0, cb) end)
  assert(res == 6 + 5000 + 6, res)
  parts[2], parts[4] = "changed", nil  -- the request took its own copy of the list
  big = nil  -- luacheck: ignore 311
  collectgarbage()
  assert(helper.slurp(path) == "alpha-" .. string.rep("B", 5000) .. "-omega")
  -- Sizes that cut the file in three, the last one longer than what is left.
  local _, n, strings = one(function(cb) return ring:readv(fd, { 3, 5000, 100 }, 3, cb) end)
  assert(n == 5009, n)
  assert(#strings == 3 and strings[1] == "ha-" and strings[2] == string.rep("B", 5000) and
         strings[3] == "-omega", strings[3])
  -- At the end of the file: every string empty.
  _, n, strings = one(function(cb) return ring:readv(fd, { 4, 4 }, 6000, cb) end)
  assert(n == 0 and strings[1] == "" and strings[2] == "")
  -- Zero-sized entries are fine; a failure hands out empty strings.
  _, n, strings = one(function(cb) return ring:readv(1000000, { 0, 8 }, 0, cb) end)
  assert(n == -luring.errno.EBADF and strings[1] == "" and strings[2] == "")
  helper.raises("must hold 1 to 1024 entries", ring.readv, ring, fd, {}, 0)
  helper.raises("must hold only sizes", ring.readv, ring, fd, { 1, "x" }, 0)
  helper.raises("sizes must be >= 0", ring.readv, ring, fd, { -1 }, 0)
  helper.raises("must hold only strings", ring.writev, ring, fd, { "a", 1 }, 0)
  local many = {}
  for i = 1, 1025 do many[i] = "x" end
  helper.raises("must hold 1 to 1024 entries", ring.writev, ring, fd, many, 0)
  os.remove(path)
  ring:close()
end)

-- Setup flags whose rings this API could not drive are refused up front.
case("unusable_setup_flags", function()
  helper.raises(
    "bad argument #2 to 'luring.queue_init' (R_DISABLED and ATTACH_WQ are not supported)",
    luring.queue_init, 4, 1 << 6)
  helper.raises("R_DISABLED and ATTACH_WQ are not supported", luring.queue_init, 4, 1 << 5)
  helper.raises("R_DISABLED and ATTACH_WQ are not supported", luring.queue_init, 4,
                { flags = 1 << 6 })
  assert(rawget(luring.setup, "R_DISABLED") == nil and rawget(luring.setup, "ATTACH_WQ") == nil)
end)

helper.run_cases(cases)
