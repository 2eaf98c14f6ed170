-- SPDX-License-Identifier: Apache-2.0
-- ping-pong: one 64-byte message from end A to end B and back, over an AF_UNIX
-- socketpair or loopback TCP (Nagle off). One operation is one round trip.
--   lua5.4 ping_pong.lua --impl luring|async|luv|luasocket [--transport unix|tcp]
--     [--seconds 0.25] [--warmup 0.05] [--ops N] [--entries 256] [--setup-flags 0]
local bench = require "bench"

local o = bench.options {
  impl = "luring", transport = "unix", seconds = 0.25, warmup = 0.05, entries = 256,
  setup_flags = 0,
}
if o.transport ~= "unix" and o.transport ~= "tcp" then bench.fail("bad --transport") end
local MESSAGE = bench.MESSAGE
local msg = string.rep("p", MESSAGE)
local impls = {}

-- As the C++ loops do: send A + recv B in one submit (the send goes first, so the recv
-- finds its data inline), then B sends back the bytes it got + recv A.
function impls.luring()
  local luring = require "luring"
  -- Module functions in locals, as hot Lua loops are written: no method lookup per call.
  local send, recv = luring.send, luring.recv
  local submit_and_wait, do_cqes = luring.submit_and_wait, luring.do_cqes
  local a, b = assert(bench.socket_pair(o.transport))
  local ring = bench.ring(luring, o.entries, o.setup_flags)
  local pending, received = 0, nil
  local function on_send(_, res)
    if res ~= MESSAGE then error("send: " .. luring.strerror(res)) end
    pending = pending - 1
  end
  local function on_recv(_, res, data)
    if res ~= MESSAGE then error("recv: " .. luring.strerror(res)) end
    received = data
    pending = pending - 1
  end
  local function exchange()
    pending = 2
    submit_and_wait(ring, 2)
    do_cqes(ring)
    while pending > 0 do
      submit_and_wait(ring, pending)
      do_cqes(ring)
    end
  end
  return function()
    send(ring, a, msg, 0, on_send)
    recv(ring, b, MESSAGE, 0, on_recv)
    exchange()
    send(ring, b, received, 0, on_send)
    recv(ring, a, MESSAGE, 0, on_recv)
    exchange()
    return 1
  end
end

-- Callbacks in the order the tasks below make their requests: each end queues its recv
-- as soon as its last send completed, so a recv usually waits for its data in the
-- kernel (armed poll) instead of finding it at submission as in impls.luring. It tells
-- the cost of the coroutine form apart from the cost of that order.
function impls.luring_echo()
  local luring = require "luring"
  local send, recv = luring.send, luring.recv
  local submit_and_wait, do_cqes = luring.submit_and_wait, luring.do_cqes
  local a, b = assert(bench.socket_pair(o.transport))
  local ring = bench.ring(luring, o.entries, o.setup_flags)
  local back = false
  local on_a_send, on_a_recv, on_b_send, on_b_recv
  function on_b_recv(_, res, data)
    if res ~= MESSAGE then error("B recv: " .. luring.strerror(res)) end
    send(ring, b, data, 0, on_b_send)
  end
  function on_b_send(_, res)
    if res ~= MESSAGE then error("B send: " .. luring.strerror(res)) end
    recv(ring, b, MESSAGE, 0, on_b_recv)
  end
  function on_a_send(_, res)
    if res ~= MESSAGE then error("A send: " .. luring.strerror(res)) end
    recv(ring, a, MESSAGE, 0, on_a_recv)
  end
  function on_a_recv(_, res, data)
    if res ~= MESSAGE or data ~= msg then error("A recv: " .. luring.strerror(res)) end
    back = true
  end
  recv(ring, b, MESSAGE, 0, on_b_recv)
  return function()
    back = false
    send(ring, a, msg, 0, on_a_send)
    repeat
      submit_and_wait(ring, 1)
      do_cqes(ring)
    until back
    return 1
  end
end

-- The coroutine form: a task at each end of the pair, LuaSocket-style receive and send
-- on luring.async sockets; A counts the round trips.
local function run_async()
  local async = require "luring.async"
  local add, result = bench.meter(o)
  local fa, fb = assert(bench.socket_pair(o.transport))
  async.run(bench.async_options(o), function()
    local a, b = async.wrap(fa), async.wrap(fb)
    local echo = async.spawn(function()
      while true do
        local data = b:receive(MESSAGE)
        if not data then return end
        assert(b:send(data))
      end
    end)
    repeat
      assert(a:send(msg))
      local back = a:receive(MESSAGE)
      if back ~= msg then error("ping-pong: wrong reply") end
    until not add(1)
    a:close()
    b:close()
    echo:join()
  end)
  return result()
end

-- The luv way: both ends are libuv streams, each reply is sent from the read callback.
local function run_luv()
  local uv = bench.need "luv"
  local fa, fb = assert(bench.socket_pair(o.transport))
  local function stream(fd)
    local s = o.transport == "tcp" and uv.new_tcp() or uv.new_pipe(false)
    assert(s:open(fd))
    return s
  end
  local a, b = stream(fa), stream(fb)
  local add, result = bench.meter(o)
  local got = 0
  b:read_start(function(err, data)
    if err or not data then bench.fail("B read: %s", err) end
    b:write(data)
  end)
  a:read_start(function(err, data)
    if err or not data then bench.fail("A read: %s", err) end
    got = got + #data
    if got < MESSAGE then return end
    got = 0
    if add(1) then
      a:write(msg)
    else
      a:close()
      b:close()
    end
  end)
  a:write(msg)
  uv.run()
  return result()
end

-- LuaSocket, blocking: the sockets are its own (it cannot adopt a socketpair).
local function run_luasocket()
  local socket = bench.need "socket"
  local a, b
  if o.transport == "tcp" then
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    a = assert(socket.connect("127.0.0.1", port))
    b = assert(server:accept())
    server:close()
    assert(a:setoption("tcp-nodelay", true))
    assert(b:setoption("tcp-nodelay", true))
  else
    local unix = bench.need "socket.unix"
    local path = os.tmpname()
    os.remove(path)
    local server = assert(unix.stream())
    assert(server:bind(path))
    assert(server:listen(1))
    a = assert(unix.stream())
    assert(a:connect(path))
    b = assert(server:accept())
    server:close()
    os.remove(path)
  end
  return bench.timed(o, function()
    assert(a:send(msg))
    local data = assert(b:receive(MESSAGE))
    assert(b:send(data))
    assert(#assert(a:receive(MESSAGE)) == MESSAGE)
    return 1
  end)
end

if o.impl == "luring" then
  bench.report(bench.timed(o, impls.luring()))
elseif o.impl == "luring-echo" then
  bench.report(bench.timed(o, impls.luring_echo()))
elseif o.impl == "async" then
  bench.report(run_async())
elseif o.impl == "luv" then
  bench.report(run_luv())
elseif o.impl == "luasocket" then
  bench.report(run_luasocket())
else
  bench.fail("unknown --impl %s", o.impl)
end
