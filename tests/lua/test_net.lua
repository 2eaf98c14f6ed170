-- SPDX-License-Identifier: Apache-2.0
-- Sockets against the real kernel, over loopback: socket, connect, bind, listen, accept,
-- multishot_accept, shutdown, sendmsg/recvmsg, send_zc; the synchronous helpers
-- getsockname, getpeername, setsockopt, getsockopt; and the synchronous fallback of
-- socket, bind and listen for kernels without those ops.
local luring = require "luring"
local helper = require "helper"
local testlib = require "testlib"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

local E = luring.errno
-- Linux's numbers for errors luring.errno does not name.
local EAFNOSUPPORT, EDESTADDRREQ = 97, 89

-- Each case makes its ring and closes it at the end (every case runs in its own process).
local ring
local function setup() ring = luring.queue_init(32, 0) end

-- The ops this kernel lacks, from the probe (never guessed from the version).
local function supported(name)
  for _, op in ipairs(luring.probe().ops) do
    if op.name == name then return op.supported end
  end
  return false
end
local function need(...)
  local missing = {}
  for _, name in ipairs({ ... }) do
    if not supported(name) then missing[#missing + 1] = name end
  end
  if #missing > 0 then helper.skip("the kernel lacks " .. table.concat(missing, ", ")) end
end

-- Runs one request made by `start(cb)` and returns its callback's arguments.
local function one(start)
  local got
  assert(start(function(...) got = table.pack(...) end), "queue full")
  helper.run_until(ring, function() return got ~= nil end)
  return table.unpack(got, 2, got.n)  -- without the cqe
end

local function fdinfo_flags(fd)
  local f = assert(io.open("/proc/self/fdinfo/" .. fd))
  local flags = f:read("a"):match("flags:%s*(%d+)")
  f:close()
  return tonumber(flags, 8)
end
local function cloexec(fd) return fdinfo_flags(fd) & tonumber("2000000", 8) ~= 0 end
local function nonblock(fd) return fdinfo_flags(fd) & tonumber("4000", 8) ~= 0 end

local function new_socket(family, type)
  local fd = one(function(cb) return ring:socket(family, type, 0, cb) end)
  assert(fd >= 0, luring.strerror(fd))
  return fd
end

local loopback = { inet = "127.0.0.1", inet6 = "::1" }

-- A listening socket made with the module: bound to port 0, then asked its port.
local function listener(family)
  local fd = new_socket(family or "inet", "stream")
  assert(one(function(cb) return ring:bind(fd, loopback[family or "inet"], 0, cb) end) == 0)
  assert(one(function(cb) return ring:listen(fd, 16, cb) end) == 0)
  local name = assert(luring.getsockname(fd))
  assert(name.port > 0)
  return fd, name.port
end

-- A connected TCP pair: the client, the accepted end and accept's peer table.
local function tcp_pair(family)
  family = family or "inet"
  local lfd, port = listener(family)
  local cfd = new_socket(family, "stream")
  local afd, peer, cres
  assert(ring:accept(lfd, 0, function(_, res, p) afd, peer = res, p end))
  assert(ring:connect(cfd, loopback[family], port, function(_, res) cres = res end))
  helper.run_until(ring, function() return afd ~= nil and cres ~= nil end)
  assert(cres == 0, luring.strerror(cres))
  assert(afd >= 0, luring.strerror(afd))
  testlib.close(lfd)
  return cfd, afd, peer
end

-- Receives exactly n bytes from fd (several recvs if need be).
local function recv_all(fd, n)
  local parts, got = {}, 0
  while got < n do
    local res, data = one(function(cb) return ring:recv(fd, n - got, 0, cb) end)
    assert(res > 0, "recv: " .. res)
    parts[#parts + 1] = data
    got = got + res
  end
  return table.concat(parts)
end

-- socket: a valid descriptor, always close-on-exec; NONBLOCK when asked; the family and
-- type by name or number; -errno from the kernel; an fd nobody receives is closed.
case("socket", function()
  setup()
  local base = helper.fd_count()
  local fd = new_socket("inet", "stream")
  assert(cloexec(fd) and not nonblock(fd))
  assert(luring.getsockname(fd).family == "inet")
  local fd2 = new_socket(luring.af.INET6, luring.sock.STREAM | luring.sock.NONBLOCK)
  assert(cloexec(fd2) and nonblock(fd2))
  assert(luring.getsockname(fd2).family == "inet6")
  local fd3 = new_socket("unix", "dgram")
  assert(cloexec(fd3) and luring.getsockname(fd3).family == "unix")
  local fd4 = new_socket("unix", "seqpacket")
  assert(helper.fd_count() == base + 4)
  -- The kernel's refusals come back as res.
  local res = one(function(cb) return ring:socket(12345, "stream", 0, cb) end)
  assert(res == -EAFNOSUPPORT, res)
  res = one(function(cb) return ring:socket("inet", "stream", 12345, cb) end)
  assert(res < 0, res)
  -- Without a callback the new descriptor is closed, not leaked.
  assert(ring:socket("inet", "dgram", 0))
  assert(luring.submit_and_wait(ring, 1) == 1)
  assert(luring.do_cqes(ring) == 1)
  assert(helper.fd_count() == base + 4)
  -- Misuse raises.
  helper.raises("family must be 'inet', 'inet6', 'unix'", ring.socket, ring, "ipx", "stream")
  helper.raises("type must be 'stream', 'dgram', 'seqpacket'", ring.socket, ring, "inet", "raw!")
  helper.raises("number expected", ring.socket, ring, nil, "stream")
  helper.raises("protocol must be >= 0", ring.socket, ring, "inet", "stream", -1)
  for _, f in ipairs({ fd, fd2, fd3, fd4 }) do testlib.close(f) end
  ring:close()
  assert(helper.fd_count() == base - 1)  -- the ring's own fd is gone too
end)

-- connect: to a listening socket made with the module (bind + listen on port 0); accept's
-- peer table names the client; -ECONNREFUSED on a closed port; bad literals raise.
case("connect", function()
  setup()
  need("connect")
  local base = helper.fd_count()
  local lfd, port = listener()
  local cfd = new_socket("inet", "stream")
  assert(one(function(cb) return ring:connect(cfd, "127.0.0.1", port, cb) end) == 0)
  local peer = assert(luring.getpeername(cfd))
  assert(peer.family == "inet" and peer.address == "127.0.0.1" and peer.port == port)
  local afd, from = one(function(cb) return ring:accept(lfd, 0, cb) end)
  assert(afd >= 0 and cloexec(afd))
  local me = luring.getsockname(cfd)
  assert(from.family == "inet" and from.address == "127.0.0.1" and from.port == me.port)
  -- "localhost" is 127.0.0.1.
  local c2 = new_socket("inet", "stream")
  assert(one(function(cb) return ring:connect(c2, "localhost", port, cb) end) == 0)
  -- A port nobody listens on: bound, asked, closed, then connected to.
  local tmp = new_socket("inet", "stream")
  assert(one(function(cb) return ring:bind(tmp, "127.0.0.1", 0, cb) end) == 0)
  local closed_port = luring.getsockname(tmp).port
  testlib.close(tmp)
  local c3 = new_socket("inet", "stream")
  local res = one(function(cb) return ring:connect(c3, "127.0.0.1", closed_port, cb) end)
  assert(res == -E.ECONNREFUSED, res)
  -- Not a socket, not a descriptor: the kernel's answer.
  local rfd, wfd = testlib.pipe()
  res = one(function(cb) return ring:connect(rfd, "127.0.0.1", port, cb) end)
  assert(res == -E.ENOTSOCK, res)
  res = one(function(cb) return ring:connect(1000000, "127.0.0.1", port, cb) end)
  assert(res == -E.EBADF, res)
  -- Misuse raises, naming the bad literal.
  helper.raises("not an IPv4 address: '300.1.2.3'", ring.connect, ring, c3, "300.1.2.3", 80)
  helper.raises("not an IPv4 address: '::1'", ring.connect, ring, c3, "::1", 80)
  helper.raises("not an IPv4 address: 'example.com'", ring.connect, ring, c3, "example.com", 80)
  helper.raises("not an IPv4 address: '127.0.0.1'", ring.connect, ring, c3, "127.0.0.1\0x", 80)
  helper.raises("port must be 0 to 65535", ring.connect, ring, c3, "127.0.0.1", 65536)
  helper.raises("number expected", ring.connect, ring, c3, "127.0.0.1", nil)
  for _, f in ipairs({ lfd, cfd, afd, c2, c3, rfd, wfd }) do testlib.close(f) end
  ring:close()
  assert(helper.fd_count() == base - 1)
end)

-- A TCP echo round trip through the module's ops only: small (copied) and large
-- (pinned) sends, with sendmsg on the connected socket (no peer) and recvmsg (no peer).
case("tcp_echo", function()
  setup()
  need("connect", "sendmsg", "recvmsg")
  local cfd, afd = tcp_pair()
  for _, msg in ipairs({ "hello", string.rep("0123456789abcdef", 4096) }) do
    local res = one(function(cb) return ring:send(cfd, msg, luring.msg.WAITALL, cb) end)
    assert(res == #msg, res)
    local got = recv_all(afd, #msg)
    assert(got == msg)
    res = one(function(cb) return ring:sendmsg(afd, got, nil, luring.msg.WAITALL, cb) end)
    assert(res == #msg, res)
    local back, n = {}, 0
    while n < #msg do
      local r, data, peer = one(function(cb) return ring:recvmsg(cfd, #msg - n, 0, cb) end)
      assert(r > 0 and #data == r and peer == nil, r)
      back[#back + 1] = data
      n = n + r
    end
    assert(table.concat(back) == msg)
  end
  testlib.close(cfd)
  testlib.close(afd)
  ring:close()
end)

-- IPv6 when the host has a loopback for it: peer tables, brackets, v4-mapped addresses.
case("inet6", function()
  setup()
  need("connect")
  local probe_fd = new_socket("inet6", "stream")
  if one(function(cb) return ring:bind(probe_fd, "::1", 0, cb) end) ~= 0 then
    helper.skip("no IPv6 loopback here")
  end
  testlib.close(probe_fd)
  local cfd, afd, peer = tcp_pair("inet6")
  assert(peer.family == "inet6" and peer.address == "::1")
  assert(peer.port == luring.getsockname(cfd).port)
  local lfd, port = listener("inet6")
  local c2 = new_socket("inet6", "stream")
  assert(one(function(cb) return ring:connect(c2, "[::1]", port, cb) end) == 0)
  -- An IPv4 literal on an inet6 socket is its v4-mapped address (dual stack).
  local l4, port4 = listener("inet")
  local c3 = new_socket("inet6", "stream")
  local res = one(function(cb) return ring:connect(c3, "127.0.0.1", port4, cb) end)
  assert(res == 0, res)
  assert(luring.getpeername(c3).address == "::ffff:127.0.0.1")
  helper.raises("not an IPv6 address: '::g'", ring.connect, ring, c2, "::g", 1)
  helper.raises("not an IPv6 address: '::1%nosuchif0'", ring.connect, ring, c2, "::1%nosuchif0", 1)
  for _, f in ipairs({ cfd, afd, lfd, c2, l4, c3 }) do testlib.close(f) end
  ring:close()
end)

-- AF_UNIX stream sockets: a path name, an abstract name (leading NUL), unnamed clients.
case("unix_stream", function()
  setup()
  need("connect")
  local base = helper.fd_count()
  local path = helper.tmpname()
  os.remove(path)
  local abstract = "\0luring-test-" .. helper.pid() .. "-" .. math.random(1 << 30)
  for _, name in ipairs({ path, abstract }) do
    local lfd = new_socket("unix", "stream")
    assert(one(function(cb) return ring:bind(lfd, name, nil, cb) end) == 0)
    assert(one(function(cb) return ring:listen(lfd, nil, cb) end) == 0)
    local me = luring.getsockname(lfd)
    assert(me.family == "unix" and me.path == name, me.path)
    local cfd = new_socket("unix", "stream")
    local afd, peer, cres
    ring:accept(lfd, 0, function(_, res, p) afd, peer = res, p end)
    ring:connect(cfd, name, nil, function(_, res) cres = res end)
    helper.run_until(ring, function() return afd ~= nil and cres ~= nil end)
    assert(cres == 0 and afd >= 0, cres)
    assert(peer.family == "unix" and peer.path == "")  -- the client is unnamed
    assert(luring.getpeername(cfd).path == name)
    assert(one(function(cb) return ring:send(cfd, "over unix", 0, cb) end) == 9)
    assert(recv_all(afd, 9) == "over unix")
    for _, f in ipairs({ lfd, cfd, afd }) do testlib.close(f) end
  end
  -- The name is taken while bound: a second bind to the path gets -EADDRINUSE.
  local s = new_socket("unix", "stream")
  assert(one(function(cb) return ring:bind(s, path, nil, cb) end) == -E.EADDRINUSE)
  os.remove(path)
  -- A missing path: -ENOENT.
  assert(one(function(cb) return ring:connect(s, path, nil, cb) end) == -E.ENOENT)
  helper.raises("must be nil for a unix socket", ring.connect, ring, s, path, 80)
  helper.raises("unix path is longer than 108 bytes", ring.connect, ring, s, string.rep("x", 109))
  helper.raises("unix path contains a NUL byte", ring.connect, ring, s, "a\0b")
  testlib.close(s)
  ring:close()
  assert(helper.fd_count() == base - 1)
end)

-- UDP with sendmsg/recvmsg: the peer address round trip (reply to the table received),
-- small and large datagrams, truncation to the size asked for, errors.
case("udp", function()
  setup()
  need("sendmsg", "recvmsg")
  local a = new_socket("inet", "dgram")
  local b = new_socket("inet", "dgram")
  assert(one(function(cb) return ring:bind(a, "127.0.0.1", 0, cb) end) == 0)
  assert(one(function(cb) return ring:bind(b, "*", 0, cb) end) == 0)
  local a_name, b_port = luring.getsockname(a), luring.getsockname(b).port
  assert(luring.getsockname(b).address == "0.0.0.0")
  local to_b = { family = "inet", address = "127.0.0.1", port = b_port }
  for _, msg in ipairs({ "ping", "", string.rep("u", 5000) }) do
    local res = one(function(cb) return ring:sendmsg(a, msg, to_b, 0, cb) end)
    assert(res == #msg, res)
    local n, data, peer = one(function(cb) return ring:recvmsg(b, 65536, 0, cb) end)
    assert(n == #msg and data == msg, n)
    assert(peer.family == "inet" and peer.address == "127.0.0.1" and peer.port == a_name.port)
    -- Reply to the table recvmsg gave.
    res = one(function(cb) return ring:sendmsg(b, "re:" .. msg, peer, 0, cb) end)
    assert(res == #msg + 3, res)
    n, data, peer = one(function(cb) return ring:recvmsg(a, 65536, 0, cb) end)
    assert(n == #msg + 3 and data == "re:" .. msg)
    assert(peer.address == "127.0.0.1" and peer.port == b_port)
  end
  -- A datagram longer than the size asked for: exactly `size` bytes (the rest is lost).
  assert(one(function(cb) return ring:sendmsg(a, "0123456789", to_b, 0, cb) end) == 10)
  local n, data = one(function(cb) return ring:recvmsg(b, 4, 0, cb) end)
  assert(n == 4 and data == "0123", n)
  -- MSG_PEEK leaves it there.
  assert(one(function(cb) return ring:sendmsg(a, "peek", to_b, 0, cb) end) == 4)
  n, data = one(function(cb) return ring:recvmsg(b, 10, luring.msg.PEEK, cb) end)
  assert(n == 4 and data == "peek")
  n, data = one(function(cb) return ring:recvmsg(b, 10, 0, cb) end)
  assert(n == 4 and data == "peek")
  -- Failures: res < 0, "" and nil.
  local peer
  n, data, peer = one(function(cb) return ring:recvmsg(1000000, 10, 0, cb) end)
  assert(n == -E.EBADF and data == "" and peer == nil)
  n = one(function(cb) return ring:recvmsg(b, 10, luring.msg.DONTWAIT, cb) end)
  assert(n == -E.EAGAIN, n)
  -- Not connected and no peer: the kernel wants an address.
  n = one(function(cb) return ring:sendmsg(a, "x", nil, 0, cb) end)
  assert(n == -EDESTADDRREQ, n)
  -- Misuse raises, naming the field.
  helper.raises("MSG_TRUNC is not supported", ring.recvmsg, ring, b, 10, 0x20)
  helper.raises("peer.address: not an IPv4 address: 'x'", ring.sendmsg, ring, a, "d",
                { family = "inet", address = "x", port = 1 })
  helper.raises("peer.port must be an integer", ring.sendmsg, ring, a, "d",
                { family = "inet", address = "127.0.0.1" })
  helper.raises("peer.family must be", ring.sendmsg, ring, a, "d", { family = "ipx" })
  helper.raises("peer.path must be a string", ring.sendmsg, ring, a, "d", { family = "unix" })
  testlib.close(a)
  testlib.close(b)
  ring:close()
end)

-- Unix datagrams to an abstract name and back to the sender's name: a peer table with a
-- leading NUL survives the round trip (and a long one goes through a pinned copy).
case("unix_dgram", function()
  setup()
  need("sendmsg", "recvmsg")
  local tag = helper.pid() .. "-" .. math.random(1 << 30)
  local a = new_socket("unix", "dgram")
  local b = new_socket("unix", "dgram")
  assert(one(function(cb) return ring:bind(a, "\0luring-a-" .. tag, nil, cb) end) == 0)
  assert(one(function(cb) return ring:bind(b, "\0luring-b-" .. tag, nil, cb) end) == 0)
  local to_b = { family = "unix", path = "\0luring-b-" .. tag }
  assert(one(function(cb) return ring:sendmsg(a, "hi b", to_b, 0, cb) end) == 4)
  local n, data, peer = one(function(cb) return ring:recvmsg(b, 100, 0, cb) end)
  assert(n == 4 and data == "hi b")
  assert(peer.family == "unix" and peer.path == "\0luring-a-" .. tag, peer.path)
  assert(one(function(cb) return ring:sendmsg(b, "hi a", peer, 0, cb) end) == 4)
  n, data = one(function(cb) return ring:recvmsg(a, 100, 0, cb) end)
  assert(n == 4 and data == "hi a")
  -- "" for bind is the unnamed address: the kernel autobinds an abstract name.
  local c = new_socket("unix", "dgram")
  assert(one(function(cb) return ring:bind(c, "", nil, cb) end) == 0)
  local auto = luring.getsockname(c).path
  assert(#auto == 6 and auto:sub(1, 1) == "\0", #auto)
  for _, f in ipairs({ a, b, c }) do testlib.close(f) end
  ring:close()
end)

-- shutdown: "send" makes the peer read EOF (res 0), the words and numbers all work, and
-- an unconnected socket gets -ENOTCONN.
case("shutdown", function()
  setup()
  need("shutdown", "connect")
  local cfd, afd = tcp_pair()
  assert(one(function(cb) return ring:send(cfd, "last", 0, cb) end) == 4)
  assert(one(function(cb) return ring:shutdown(cfd, "send", cb) end) == 0)
  assert(recv_all(afd, 4) == "last")
  local n, data = one(function(cb) return ring:recv(afd, 100, 0, cb) end)
  assert(n == 0 and data == "", n)
  -- The other direction still works.
  assert(one(function(cb) return ring:send(afd, "back", 0, cb) end) == 4)
  assert(recv_all(cfd, 4) == "back")
  assert(one(function(cb) return ring:shutdown(cfd, "receive", cb) end) == 0)
  assert(one(function(cb) return ring:shutdown(afd, luring.shut.WR, cb) end) == 0)
  n = one(function(cb) return ring:recv(cfd, 100, 0, cb) end)
  assert(n == 0, n)
  -- Both ways closed, the socket is no longer connected.
  assert(one(function(cb) return ring:shutdown(cfd, "both", cb) end) == -E.ENOTCONN)
  -- nil is "both": the peer reads EOF, and its sends fail.
  local c2, a2 = tcp_pair()
  assert(one(function(cb) return ring:shutdown(a2, nil, cb) end) == 0)
  n = one(function(cb) return ring:recv(c2, 100, 0, cb) end)
  assert(n == 0, n)
  n = one(function(cb) return ring:send(a2, "x", luring.msg.NOSIGNAL, cb) end)
  assert(n == -E.EPIPE, n)
  local s = new_socket("inet", "stream")
  assert(one(function(cb) return ring:shutdown(s, "both", cb) end) == -E.ENOTCONN)
  local rfd, wfd = testlib.pipe()
  assert(one(function(cb) return ring:shutdown(rfd, "both", cb) end) == -E.ENOTSOCK)
  helper.raises("how must be 'receive', 'send', 'both'", ring.shutdown, ring, s, "read")
  helper.raises("how must be 'receive', 'send', 'both'", ring.shutdown, ring, s, 3)
  for _, f in ipairs({ cfd, afd, c2, a2, s, rfd, wfd }) do testlib.close(f) end
  ring:close()
end)

-- send_zc: the callback runs exactly once, after the notification (its request has left
-- the ring by then), with res = all the bytes; a 1 MiB string dropped by Lua and
-- collected stays pinned until then and arrives intact.
case("send_zc", function()
  setup()
  need("send_zc", "connect")
  local cfd, afd = tcp_pair()
  -- Fill the connection with copied bytes first, so the zero-copy send has to wait for
  -- room before it reads the string: it reads it only after the collections below.
  assert(luring.setsockopt(cfd, "sndbuf", 16384) and luring.setsockopt(afd, "rcvbuf", 16384))
  local filler = string.rep("f", 4096)
  local filled = 0
  while true do
    local res = one(function(cb) return ring:send(cfd, filler, luring.msg.DONTWAIT, cb) end)
    if res == -E.EAGAIN then break end
    assert(res > 0, res)
    filled = filled + res
  end
  local N = 1 << 20
  local function pattern()
    local parts = {}
    for i = 1, N // 16 do parts[i] = ("%015d\n"):format(i) end
    return table.concat(parts)
  end
  local calls, zc_res, in_flight_at_cb, outstanding_at_cb = 0, nil, nil, nil
  local outstanding, got, total = 0, {}, 0
  -- All the bytes, or those the zero-copy send said it sent.
  local function expected()
    return filled + (zc_res and math.max(zc_res, 0) or N)
  end
  local function want_more()
    outstanding = outstanding + 1
    assert(ring:recv(afd, 65536, 0, function(_, res, chunk)
      outstanding = outstanding - 1
      assert(res > 0, res)
      got[#got + 1] = chunk
      total = total + res
      if total < expected() then want_more() end
    end))
  end
  -- The string only ever lives in a coroutine that is gone before the collections below
  -- (a dead register of this function's frame would keep it alive): only the request
  -- holds it then.
  coroutine.wrap(function()
    local data = pattern()
    assert(#data == N)
    assert(ring:send_zc(cfd, data, luring.msg.WAITALL, function(_, res, ...)
      calls = calls + 1
      zc_res = res
      assert(select("#", ...) == 0)
      in_flight_at_cb, outstanding_at_cb = ring:in_flight(), outstanding
    end))
  end)()
  assert(luring.submit(ring) == 1)
  -- Memory freed now would be reused by these: the received bytes would show it.
  local junk = {}
  for i = 1, 8 do
    collectgarbage()
    junk[i] = string.rep(string.char(64 + i), N)
  end
  junk = nil
  collectgarbage()
  want_more()
  helper.run_until(ring, function() return calls > 0 and total >= expected() end, 20)
  assert(calls == 1 and zc_res == N, ("calls %d res %s"):format(calls, tostring(zc_res)))
  -- At the callback the zero-copy request had already ended (final CQE, F_NOTIF): only
  -- recvs were in flight.
  assert(in_flight_at_cb == outstanding_at_cb, ("%d in flight, %d recvs"):format(
    in_flight_at_cb, outstanding_at_cb))
  local received = table.concat(got)
  assert(total == filled + N and #received == total)
  assert(received:sub(1, filled) == string.rep("f", filled))
  assert(received:sub(filled + 1) == pattern(), "the zero-copy bytes changed")
  -- Nothing more arrives for it.
  assert(luring.submit(ring) == 0 and luring.do_cqes(ring) == 0 and calls == 1)
  -- A failure also calls back once: zero copy over AF_UNIX is refused.
  local u1, u2 = testlib.socketpair()
  local n = 0
  local res
  assert(ring:send_zc(u1, "unix", 0, function(_, r) n = n + 1; res = r end))
  helper.run_until(ring, function() return n > 0 end)
  assert(luring.submit(ring) == 0 and luring.do_cqes(ring) == 0)
  assert(n == 1 and res == -E.EOPNOTSUPP, res)
  for _, f in ipairs({ cfd, afd, u1, u2 }) do testlib.close(f) end
  ring:close()
end)

-- multishot_accept: one request delivers N connections to one callback, more = true each
-- time, with the peer's address; it ends with one final CQE (ring:cancel when the module
-- has it, else shutting the listener down) and leaks no descriptor.
case("multishot_accept", function()
  setup()
  need("connect")
  local base = helper.fd_count()
  local lfd, port = listener()
  local N = 5
  local accepted, peers, final = {}, {}, nil
  local handle = assert(ring:multishot_accept(lfd, 0, function(_, res, peer, more)
    if not more then
      final = { res = res, peer = peer }
      return
    end
    assert(res >= 0, res)
    assert(type(more) == "boolean")
    accepted[#accepted + 1] = res
    peers[#peers + 1] = peer
  end))
  assert(luring.submit(ring) == 1)
  local clients, ports = {}, {}
  for i = 1, N do
    clients[i] = new_socket("inet", "stream")
    assert(one(function(cb) return ring:connect(clients[i], "127.0.0.1", port, cb) end) == 0)
    ports[luring.getsockname(clients[i]).port] = true
  end
  helper.run_until(ring, function() return #accepted == N or final ~= nil end)
  if final and final.res == -E.EINVAL and #accepted == 0 then
    helper.skip("the kernel has no multishot accept (-EINVAL)")
  end
  assert(final == nil and #accepted == N)
  for i = 1, N do
    assert(cloexec(accepted[i]))
    assert(peers[i].family == "inet" and peers[i].address == "127.0.0.1")
    assert(ports[peers[i].port], peers[i].port)
    ports[peers[i].port] = nil
  end
  -- Still armed: one more connection arrives on the same request.
  local extra = new_socket("inet", "stream")
  assert(one(function(cb) return ring:connect(extra, "127.0.0.1", port, cb) end) == 0)
  helper.run_until(ring, function() return #accepted == N + 1 end)
  -- The end: one final CQE (more = false), then nothing.
  local want
  if ring.cancel then
    local cres
    assert(ring:cancel(handle, function(_, r) cres = r end))
    helper.run_until(ring, function() return final ~= nil and cres ~= nil end)
    assert(cres == 0, cres)
    want = -E.ECANCELED
  else
    -- Shutting a listener down wakes its accepts with -EINVAL.
    local sres
    assert(ring:shutdown(lfd, "both", function(_, r) sres = r end))
    helper.run_until(ring, function() return final ~= nil and sres ~= nil end)
    assert(sres == 0, sres)
    want = -E.EINVAL
  end
  assert(final.res == want and final.peer == nil, final.res)
  assert(luring.submit(ring) == 0 and luring.do_cqes(ring) == 0)
  assert(ring:in_flight() == 0)
  for _, f in ipairs(accepted) do testlib.close(f) end
  for _, f in ipairs(clients) do testlib.close(f) end
  testlib.close(extra)
  testlib.close(lfd)
  ring:close()
  assert(helper.fd_count() == base - 1, ("fds %d -> %d"):format(base - 1, helper.fd_count()))
end)

-- A ring closed with a multishot accept armed and connections it took but nobody saw:
-- they are closed, and so is nothing else.
case("multishot_accept_close_ring", function()
  setup()
  need("connect")
  local lfd, port = listener()
  local clients = {}
  for i = 1, 5 do
    clients[i] = new_socket("inet", "stream")
    assert(one(function(cb) return ring:connect(clients[i], "127.0.0.1", port, cb) end) == 0)
  end
  ring:close()
  local base = helper.fd_count()
  local r = luring.queue_init(8, 0)
  assert(r:multishot_accept(lfd, 0, function() error("never called") end))
  assert(luring.submit_and_wait(r, 5) >= 1)
  r:close()
  assert(helper.fd_count() == base, ("fds %d -> %d"):format(base, helper.fd_count()))
  for _, f in ipairs(clients) do testlib.close(f) end
  testlib.close(lfd)
end)

-- getsockname / getpeername / setsockopt / getsockopt: values, and nil, msg, errno.
case("sockopts", function()
  setup()
  need("connect")
  local cfd, afd = tcp_pair()
  for _, name in ipairs({ "tcp-nodelay", "keepalive", "reuseaddr", "reuseport" }) do
    assert(luring.setsockopt(cfd, name, true) == true)
    assert(luring.getsockopt(cfd, name) == true, name)
    assert(luring.setsockopt(cfd, name, false) == true)
    assert(luring.getsockopt(cfd, name) == false, name)
  end
  assert(luring.setsockopt(cfd, "linger", 3) == true)
  assert(luring.getsockopt(cfd, "linger") == 3)
  assert(luring.setsockopt(cfd, "linger", 0) == true)
  assert(luring.getsockopt(cfd, "linger") == 0)
  assert(luring.setsockopt(cfd, "linger", false) == true)
  assert(luring.getsockopt(cfd, "linger") == false)
  for _, name in ipairs({ "rcvbuf", "sndbuf" }) do
    assert(luring.setsockopt(cfd, name, 65536) == true)
    assert(luring.getsockopt(cfd, name) == 2 * 65536, name)  -- the kernel doubles it
  end
  -- Failures: nil, "name: message", errno.
  local rfd, wfd = testlib.pipe()
  local ok, msg, err = luring.setsockopt(rfd, "keepalive", true)
  assert(ok == nil and msg == "setsockopt: " .. luring.strerror(E.ENOTSOCK) and err == E.ENOTSOCK)
  ok, msg, err = luring.getsockopt(rfd, "rcvbuf")
  assert(ok == nil and msg:find("^getsockopt: ") and err == E.ENOTSOCK)
  ok, msg, err = luring.getsockname(rfd)
  assert(ok == nil and msg:find("^getsockname: ") and err == E.ENOTSOCK)
  local s = new_socket("inet", "stream")
  ok, msg, err = luring.getpeername(s)
  assert(ok == nil and msg == "getpeername: " .. luring.strerror(E.ENOTCONN) and err == E.ENOTCONN)
  assert(luring.getpeername(cfd).port == luring.getsockname(afd).port)
  -- tcp-nodelay on a unix socket is the kernel's refusal, not a raise.
  local u1, u2 = testlib.socketpair()
  ok, msg, err = luring.setsockopt(u1, "tcp-nodelay", true)
  assert(ok == nil and err == E.EOPNOTSUPP, err)
  -- Misuse raises.
  helper.raises("unknown option 'nodelay'", luring.setsockopt, cfd, "nodelay", true)
  helper.raises("boolean expected", luring.setsockopt, cfd, "keepalive", 1)
  helper.raises("linger must be seconds", luring.setsockopt, cfd, "linger", -1)
  helper.raises("number expected", luring.setsockopt, cfd, "linger", true)
  helper.raises("size must be 0 to 2147483647", luring.setsockopt, cfd, "rcvbuf", -5)
  helper.raises("unknown option", luring.getsockopt, cfd, "bogus")
  for _, f in ipairs({ cfd, afd, rfd, wfd, s, u1, u2 }) do testlib.close(f) end
  ring:close()
end)

-- Constants.
case("constants", function()
  assert(luring.af.INET == 2 and luring.af.INET6 == 10 and luring.af.UNIX == 1)
  assert(luring.sock.STREAM == 1 and luring.sock.DGRAM == 2 and luring.sock.SEQPACKET == 5)
  assert(luring.sock.NONBLOCK == 2048 and luring.sock.CLOEXEC == 524288)
  assert(luring.shut.RD == 0 and luring.shut.WR == 1 and luring.shut.RDWR == 2)
  helper.raises("luring.shut has no constant 'BOTH'", function() return luring.shut.BOTH end)
  helper.raises("luring.af has no constant", function() return luring.af.PACKET end)
end)

-- The synchronous fallback of socket, bind and listen, for kernels without those ops
-- (5.19, 6.11). On a kernel that has them it cannot be reached naturally, so a child runs
-- with a preloaded shim that makes IORING_REGISTER_PROBE report them unsupported. The
-- fallback is seen at work: its results exist before anything is submitted.
local fallback_child = [[
local luring = require "luring"
local helper = require "helper"
local testlib = require "testlib"
for _, op in ipairs(luring.probe().ops) do
  if op.name == "socket" or op.name == "bind" or op.name == "listen" then
    assert(not op.supported, op.name .. " should look unsupported")
  end
end
local ring = luring.queue_init(8, 0)
local base = helper.fd_count()
local fd
assert(ring:socket("inet", "stream", 0, function(_, res) fd = res end))
assert(helper.fd_count() == base + 1, "socket(2) ran before any submit")
helper.run_until(ring, function() return fd ~= nil end)
assert(fd >= 0, fd)
local f = assert(io.open("/proc/self/fdinfo/" .. fd))
assert(tonumber(f:read("a"):match("flags:%s*(%d+)"), 8) & tonumber("2000000", 8) ~= 0)
f:close()
local res
assert(ring:bind(fd, "127.0.0.1", 0, function(_, r) res = r end))
local port = luring.getsockname(fd).port
assert(port ~= 0, "bind(2) ran before any submit")
helper.run_until(ring, function() return res ~= nil end)
assert(res == 0, res)
res = nil
assert(ring:listen(fd, nil, function(_, r) res = r end))
helper.run_until(ring, function() return res ~= nil end)
assert(res == 0, res)
-- The kernel's connect and accept work against it.
local c
assert(ring:socket("inet", "stream", 0, function(_, r) c = r end))
helper.run_until(ring, function() return c ~= nil end)
local cres, afd
ring:connect(c, "127.0.0.1", port, function(_, r) cres = r end)
ring:accept(fd, 0, function(_, r) afd = r end)
helper.run_until(ring, function() return cres ~= nil and afd ~= nil end)
assert(cres == 0 and afd >= 0, cres)
-- Failures come back as res, as the kernel's would.
local s2
ring:socket("inet", "stream", 0, function(_, r) s2 = r end)
helper.run_until(ring, function() return s2 ~= nil end)
res = nil
ring:bind(s2, "127.0.0.1", port, function(_, r) res = r end)
helper.run_until(ring, function() return res ~= nil end)
assert(res == -luring.errno.EADDRINUSE, res)
res = nil
ring:listen(1000000, 4, function(_, r) res = r end)
helper.run_until(ring, function() return res ~= nil end)
assert(res == -luring.errno.EBADF, res)
res = nil
ring:socket(12345, "stream", 0, function(_, r) res = r end)
helper.run_until(ring, function() return res ~= nil end)
assert(res == -97, res)
-- Not in a chain: done at once, it could neither wait for the requests before it nor
-- stop the chain when it fails.
local ok, err = pcall(ring.link, ring, { { "socket", "inet", "dgram", 0 }, { "nop" } })
assert(not ok and err:find("socket cannot be linked on this kernel", 1, true), err)
assert(ring:in_flight() == 0)
-- A new fd nobody receives is closed.
assert(ring:socket("inet", "dgram", 0))
helper.run_until(ring, function() return ring:in_flight() == 0 end)
for _, x in ipairs({ fd, c, afd, s2 }) do testlib.close(x) end
ring:close()
assert(helper.fd_count() == base - 1, "fd leak")
print("ok")
]]

local shim_source = [[
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/io_uring.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/syscall.h>

/* Interposes syscall(2): after IORING_REGISTER_PROBE succeeds, the opcodes listed in
   LURING_TEST_HIDE_OPS (comma separated) are reported unsupported. */
long syscall(long n, ...) {
    static long (*real)(long, ...);
    va_list ap;
    long a[6];
    va_start(ap, n);
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    long ret = real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (n == __NR_io_uring_register && a[1] == IORING_REGISTER_PROBE && ret == 0) {
        struct io_uring_probe *p = (struct io_uring_probe *)a[2];
        const char *hide = getenv("LURING_TEST_HIDE_OPS");
        while (hide && *hide) {
            char *end;
            long op = strtol(hide, &end, 10);
            for (unsigned i = 0; i < p->ops_len; i++) {
                if (p->ops[i].op == op) p->ops[i].flags &= ~IO_URING_OP_SUPPORTED;
            }
            hide = *end ? end + 1 : end;
        }
    }
    return ret;
}
]]

case("sync_fallback", function()
  need("socket", "bind", "listen")  -- else every other case already runs the fallback
  local codes = {}
  for _, op in ipairs(luring.probe().ops) do
    if op.name == "socket" or op.name == "bind" or op.name == "listen" then
      codes[#codes + 1] = op.code
    end
  end
  assert(#codes == 3)
  local dir = helper.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  local src, so, script = dir .. "/shim.c", dir .. "/shim.so", dir .. "/child.lua"
  local f = assert(io.open(src, "w"))
  f:write(shim_source)
  f:close()
  f = assert(io.open(script, "w"))
  f:write(fallback_child)
  f:close()
  local cc = os.getenv("CC") or "cc"
  -- Not under the sanitizers' preload: the compiler is not built for it.
  local built = os.execute(("LD_PRELOAD= %s -shared -fPIC -o %s %s -ldl >%s/cc.log 2>&1"):format(
    cc, so, src, dir))
  if not built then
    os.execute("rm -rf " .. dir)
    helper.skip("no C compiler to build the probe shim (" .. cc .. ")")
  end
  local preload = ((os.getenv("LD_PRELOAD") or "") .. " " .. so):gsub("^ ", "")
  local cmd = ("LD_PRELOAD=%s LURING_TEST_HIDE_OPS=%s %s 2>&1"):format(
    helper.shell_quote(preload), table.concat(codes, ","), helper.lua_command(script))
  local p = io.popen(cmd)
  local out = p:read("a")
  local ok = p:close()
  os.execute("rm -rf " .. dir)
  assert(ok and out:find("ok\n$"), out)
end)

-- luring._receives_last (luring.async turns it on): a recv queued before the send that
-- brings its data goes to the kernel after it, and finds the data at once. Seen on a
-- DEFER_TASKRUN ring, where a recv that had to wait for its data completes only at the
-- next enter that waits: after a submit that does not wait, both completions are there
-- only when the order was changed.
case("receives_last", function()
  local s = luring.setup
  local flags = s.SINGLE_ISSUER | s.DEFER_TASKRUN
  if not helper.setup_flags_supported().defer_taskrun then helper.skip("needs IORING_SETUP_DEFER_TASKRUN (6.1)") end
  for _, on in ipairs({ false, true }) do
    local r = luring.queue_init(8, { flags = flags })
    assert(luring._receives_last(r) == false)  -- off unless asked
    assert(luring._receives_last(r, on) == false)
    assert(luring._receives_last(r) == on)
    local a, b = assert(testlib.socketpair())
    local got = {}
    assert(r:recv(b, 64, 0, function(_, res, data) got[#got + 1] = res .. " " .. data end))
    assert(r:send(a, "hello", 0, function(_, res) got[#got + 1] = res end))
    local ready = r:wait(0)  -- submits both, waits for nothing
    assert(ready == (on and 2 or 1), ("receives_last %s: %d ready"):format(on, ready))
    assert(r:run() == 0)
    assert(#got == 2 and got[1] == 5 and got[2] == "5 hello", table.concat(got, ", "))
    r:close()
    assert(testlib.close(a) and testlib.close(b))
  end
  helper.raises("_receives_last' (boolean expected", luring._receives_last,
                luring.queue_init(2, 0), 1)
end)

helper.run_cases(cases)
