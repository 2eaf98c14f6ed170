-- SPDX-License-Identifier: Apache-2.0
-- Ring lifetime (reliability cases 21, 22, 23, 25 and 30): closing or collecting a ring
-- with requests in flight, closing twice, create/destroy churn, and strings the kernel
-- reads after the script dropped them. Nothing may be written into freed memory, no
-- descriptor may leak or be closed twice, and memory stays flat.
local luring = require "luring"
local helper = require "helper"

local have_uv, uv = pcall(require, "luv")
if not have_uv then helper.skip("lua-luv is needed for socket pairs and raw descriptors") end

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

local devnull = luring.open_file("/dev/null", "w")
assert(devnull >= 0)

-- Under ASan freed memory sits in a quarantine, so resident memory is no measure there.
local asan = (os.getenv("LD_PRELOAD") or ""):find("asan") ~= nil

local function now() return helper.now() end

-- 10^5 fresh strings with known contents (long ones, so each is its own allocation),
-- then a check that none was overwritten.
local canary_base, canary_want = {}, {}
for k = 0, 47 do
  canary_base[k] = ("canary %02d: long enough not to be interned by Lua; "):format(k):rep(2)
  canary_want[k] = canary_base[k] .. "!"
end
local function canaries()
  local list = {}
  for i = 1, 100000 do list[i] = canary_base[i % 48] .. "!" end
  for i = 1, 100000 do
    if list[i] ~= canary_want[i % 48] then
      error("canary " .. i .. " was overwritten: " .. ("%q"):format(list[i]))
    end
  end
end

-- The descriptors of this process that are io_uring instances.
local function ring_fds()
  local out = os.tmpname()
  assert(os.execute("ls -l /proc/" .. helper.pid() .. "/fd > " .. out))
  local fds = {}
  for line in io.lines(out) do
    local fd = line:match(" (%d+) %-> anon_inode:%[io_uring%]")
    if fd then fds[#fds + 1] = math.tointeger(fd) end
  end
  os.remove(out)
  return fds
end

-- Runs a Lua script in a fresh interpreter with this test's module paths; returns the
-- exit status, stdout, stderr and the time it took.
local function run_lua(source, ...)
  local script, out, err = helper.tmpname(), helper.tmpname(), helper.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(source)
  f:close()
  local cmd = { helper.lua_command(script, ...), ">" .. out .. " 2>" .. err }
  local t0 = now()
  local _, how, code = os.execute(table.concat(cmd, " "))
  local elapsed = now() - t0
  return (how == "exit" and code or -1), helper.slurp(out), helper.slurp(err), elapsed
end

-- Case 21: queue_exit with recv and read requests in flight, then data arrives for
-- every one of them. The kernel must not write it into buffers that were freed.
case("case21_exit_in_flight", function()
  local N = 64
  local fifo_paths = {}
  for i = 1, N do
    fifo_paths[i] = helper.tmpname()
    os.remove(fifo_paths[i])
  end
  assert(os.execute("mkfifo " .. table.concat(fifo_paths, " ")))
  local block = ("0123456789abcdef"):rep(256)  -- 4 KiB

  collectgarbage()
  collectgarbage()
  local baseline = helper.fd_count()
  local rss_warm, lua_warm
  local cycles = 50
  for cycle = 1, cycles do
    local r = luring.queue_init(256, 0)
    local cb, count = helper.counter()
    local socks, fifos = {}, {}
    for i = 1, N do
      local pair = assert(uv.socketpair())
      socks[i] = pair
      assert(luring.recv(r, pair[1], 4096, 0, cb))
      -- Read/write first, so opening the read side never blocks.
      local wfd = luring.open_file(fifo_paths[i], "w")
      local rfd = luring.open_file(fifo_paths[i], "r")
      assert(wfd >= 0 and rfd >= 0)
      fifos[i] = { rfd, wfd }
      assert(luring.read(r, rfd, 4096, 0, cb))
    end
    assert(luring.submit(r) == 2 * N)
    assert(luring.do_cqes(r) == 0)
    local t0 = now()
    luring.queue_exit(r)
    -- Cancellation worked: no fallback to waiting out the 2 s bound.
    assert(now() - t0 < 1, "queue_exit took " .. (now() - t0) .. " s")
    r = nil

    for i = 1, N do
      assert(uv.fs_write(socks[i][2], block) == 4096)
      assert(uv.fs_write(fifos[i][2], block) == 4096)
    end
    canaries()
    assert(count() == 0, "a callback ran after queue_exit")
    -- The cancelled requests took nothing: the data is still there to read.
    for i = 1, N do
      assert(uv.fs_read(socks[i][1], 8192) == block)
      assert(uv.fs_read(fifos[i][1], 8192) == block)
    end
    for i = 1, N do
      assert(uv.fs_close(socks[i][1]) and uv.fs_close(socks[i][2]))
      assert(uv.fs_close(fifos[i][1]) and uv.fs_close(fifos[i][2]))
    end
    socks, fifos = nil, nil
    collectgarbage()
    collectgarbage()
    if cycle == 1 or cycle == cycles then
      assert(helper.fd_count() == baseline, "descriptors leaked in cycle " .. cycle)
    end
    if cycle == 10 then rss_warm, lua_warm = helper.rss_kib(), collectgarbage("count") end
  end
  local lua_grown = collectgarbage("count") - lua_warm
  assert(lua_grown < 256, ("Lua heap grew by %.0f KiB"):format(lua_grown))
  if not asan then
    local rss_grown = helper.rss_kib() - rss_warm
    assert(rss_grown < 2048, ("resident memory grew by %d KiB over %d cycles"):format(rss_grown, cycles - 10))
  end
end)

-- Case 22: queue_exit twice, with the ring's descriptor number reused in between, and
-- the collector after that. The new file must not be closed by the ring.
case("case22_exit_twice", function()
  collectgarbage()
  collectgarbage()
  local before = {}
  for _, fd in ipairs(ring_fds()) do before[fd] = true end
  local r = luring.queue_init(4, 0)
  local ring_fd
  for _, fd in ipairs(ring_fds()) do
    if not before[fd] then ring_fd = fd end
  end
  assert(ring_fd, "the new ring's descriptor is not in /proc/self/fd")
  luring.queue_exit(r)
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  -- The lowest free number: the one the ring just gave back.
  assert(fd == ring_fd, ("open_file got fd %d, the ring had %d"):format(fd, ring_fd))
  luring.queue_exit(r)
  r:close()
  helper.raises("closed ring", luring.submit, r)
  helper.raises("closed ring", luring.write, r, fd, "x", 0)
  r = nil
  collectgarbage()
  collectgarbage()

  local r2 = luring.queue_init(4, 0)
  local wrote, got
  assert(luring.write(r2, fd, "still mine", 0, function(_, res) wrote = res end))
  assert(luring.submit_and_wait(r2, 1) == 1)
  assert(luring.do_cqes(r2) == 1)
  assert(wrote == 10, luring.strerror(wrote))
  assert(luring.read(r2, fd, 64, 0, function(_, res, data) got = data end))
  assert(luring.submit_and_wait(r2, 1) == 1)
  assert(luring.do_cqes(r2) == 1)
  assert(got == "still mine", got)
  local f = assert(io.open(path))
  assert(f:read("a") == "still mine")
  f:close()
  r2:close()
  assert(uv.fs_close(fd))
end)

-- The ring's descriptor closed behind its back and the number reused, each time with a
-- request in flight so that closing would drain: by a file, which must stay open and
-- readable (and never be mapped: past its end that raises SIGBUS); by another ring,
-- which must not be closed, nor entered (the drain's cancel-all and waits would reach
-- it), and whose own read must still complete.
case("exit_after_fd_closed_behind_its_back", function()
  local testlib = require "testlib"
  collectgarbage()
  collectgarbage()
  local baseline = helper.fd_count()
  local function new_ring()
    local before = {}
    for _, fd in ipairs(ring_fds()) do before[fd] = true end
    local r = luring.queue_init(4, 0)
    for _, fd in ipairs(ring_fds()) do
      if not before[fd] then return r, fd end
    end
    error("the new ring's descriptor is not in /proc/self/fd")
  end
  local ran = 0
  local function never() ran = ran + 1 end
  local rfd, wfd = helper.fifo()  -- nothing is ever written: reads stay in flight
  local path = helper.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("still readable")
  f:close()

  local r, ring_fd = new_ring()
  assert(r:read(rfd, 16, 0, never))
  assert(r:submit() == 1)
  assert(testlib.close(ring_fd))
  local fd = luring.open_file(path, "r")
  assert(fd == ring_fd, ("open_file got fd %d, the ring had %d"):format(fd, ring_fd))
  local t0 = now()
  r:close()
  assert(now() - t0 < 1, "close took " .. (now() - t0) .. " s")
  assert(testlib.read(fd, 64) == "still readable")
  assert(testlib.close(fd))

  local r1, fd1 = new_ring()
  assert(r1:read(rfd, 16, 0, never))
  assert(r1:submit() == 1)
  assert(testlib.close(fd1))
  local r2, fd2 = new_ring()
  assert(fd2 == fd1, ("the second ring got fd %d, the first had %d"):format(fd2, fd1))
  local rfd2, wfd2 = helper.fifo()
  local got
  assert(r2:read(rfd2, 16, 0, function(_, res, data) got = data or res end))
  assert(r2:submit() == 1)
  t0 = now()
  r1:close()
  assert(now() - t0 < 1, "close took " .. (now() - t0) .. " s")
  assert(testlib.write(wfd2, "for r2") == 6)
  helper.run_until(r2, function() return got ~= nil end)
  assert(got == "for r2", tostring(got))
  r2:close()
  assert(ran == 0, "a callback of a closed ring ran")
  for _, d in ipairs({ rfd, wfd, rfd2, wfd2 }) do assert(testlib.close(d)) end
  collectgarbage()
  collectgarbage()
  assert(helper.fd_count() == baseline, "descriptors leaked")
end)

-- Case 23: a ring collected with requests in flight. Its __gc cancels and reaps them
-- (no callback runs), so data that arrives later stays in the socket.
case("case23_collected_in_flight", function()
  collectgarbage()
  collectgarbage()
  local baseline = helper.fd_count()
  local block = ("collected"):rep(455)  -- 4095 bytes
  local ran = 0

  -- Plain: the ring is only referenced from a finished block.
  local pair = assert(uv.socketpair())
  do
    local r = luring.queue_init(8, 0)
    assert(luring.recv(r, pair[1], 4096, 0, function() ran = ran + 1 end))
    assert(luring.submit(r) == 1)
  end
  -- With a cycle: the callback holds the ring, the ring's table holds the callback.
  local pair2 = assert(uv.socketpair())
  do
    local r = luring.queue_init(8, 0)
    assert(r:recv(pair2[1], 4096, 0, function(cqe) ran = ran + 1; r:cqe_seen(cqe) end))
    assert(r:submit() == 1)
  end
  -- With a parked write whose string nothing else references.
  local rfd, wfd = helper.fifo()
  do
    local r = luring.queue_init(8, 0)
    assert(r:write(wfd, ("F"):rep(65536), 0))
    assert(r:submit_and_wait(1) == 1)
    assert(r:do_cqes() == 1)
    assert(r:write(wfd, ("parked"):rep(10000), 0, function() ran = ran + 1 end))
    assert(r:submit() == 1)
    assert(r:do_cqes() == 0)
  end
  collectgarbage()
  collectgarbage()
  assert(helper.fd_count() == baseline + 6, "the collected rings' descriptors are still open")

  assert(uv.fs_write(pair[2], block) == #block)
  assert(uv.fs_write(pair2[2], block) == #block)
  canaries()
  assert(ran == 0, "a callback ran during collection")
  assert(uv.fs_read(pair[1], 8192) == block)
  assert(uv.fs_read(pair2[1], 8192) == block)
  -- The FIFO holds the filler and nothing of the cancelled write.
  assert(uv.fs_read(rfd, 65536) == ("F"):rep(65536))
  assert(uv.fs_write(wfd, "end") == 3)
  assert(uv.fs_read(rfd, 65536) == "end")
  for _, fd in ipairs({ pair[1], pair[2], pair2[1], pair2[2], rfd, wfd }) do
    assert(uv.fs_close(fd))
  end
  assert(helper.fd_count() == baseline)

  -- A script that ends with requests in flight and no explicit exit: lua_close
  -- finalizes the rings, and the process exits cleanly and promptly.
  local fifo1, fifo2 = helper.tmpname(), helper.tmpname()
  os.remove(fifo1)
  os.remove(fifo2)
  assert(os.execute("mkfifo " .. fifo1 .. " " .. fifo2))
  local status, out, err, elapsed = run_lua([[
    local luring = require "luring"
    local function open_fifo(path)
      local w = luring.open_file(path, "w")
      local r = luring.open_file(path, "r")
      assert(w >= 0 and r >= 0)
      return r, w
    end
    local r1, w1 = open_fifo(arg[1])
    local r2, w2 = open_fifo(arg[2])
    -- A global ring whose callbacks hold it: a read and a parked write in flight.
    ring = luring.queue_init(8, 0)
    assert(ring:write(w2, ("f"):rep(65536), 0))
    assert(ring:submit_and_wait(1) == 1)
    assert(ring:do_cqes() == 1)
    assert(ring:read(r1, 4096, 0, function(cqe) print("callback ran"); ring:cqe_seen(cqe) end))
    assert(ring:write(w2, ("p"):rep(1 << 20), 0, function() print("callback ran") end))
    assert(ring:submit() == 2)
    -- A local one, unreachable by the time the script ends.
    do
      local other = luring.queue_init(4, 0)
      assert(other:read(r2, 16, 0, function() print("callback ran") end))
      assert(other:submit() == 1)
    end
    io.stdout:write("end of script\n")
  ]], fifo1, fifo2)
  assert(status == 0, ("exit status %d, stderr: %s"):format(status, err))
  assert(out == "end of script\n", out)
  assert(err == "", err)
  assert(elapsed < 2, ("the script took %.2f s to exit"):format(elapsed))
end)

-- Case 25: create/destroy churn. Descriptors, the Lua heap and resident memory stay
-- flat.
case("case25_churn", function()
  collectgarbage()
  collectgarbage()
  local baseline = helper.fd_count()
  local wrote = 0
  local function cb(_, res) wrote = wrote + res end
  local iterations = 10000
  local rss_warm, lua_warm
  for i = 1, iterations do
    local r = luring.queue_init(64, 0)
    assert(luring.write(r, devnull, "churn", 0, cb))
    assert(luring.submit_and_wait(r, 1) == 1)
    assert(luring.do_cqes(r) == 1)
    luring.queue_exit(r)
    if i % 2500 == 0 then
      assert(helper.fd_count() == baseline, "descriptors leaked after " .. i .. " rings")
    end
    if i == 1000 then
      collectgarbage()
      rss_warm, lua_warm = helper.rss_kib(), collectgarbage("count")
    end
  end
  assert(wrote == 5 * iterations)
  collectgarbage()
  local lua_grown = collectgarbage("count") - lua_warm
  assert(lua_grown < 256, ("Lua heap grew by %.0f KiB"):format(lua_grown))
  if not asan then
    local rss_grown = helper.rss_kib() - rss_warm
    assert(rss_grown < 2048, ("resident memory grew by %d KiB"):format(rss_grown))
  end
end)

-- Case 30: the string given to write/send is the only copy, the collector runs and the
-- allocator reuses memory while the kernel still has to read it.
case("case30_pinned_strings", function()
  -- 1 MiB of a pattern whose period (34) is no power of two, so shifted or reused
  -- memory cannot look right by accident.
  local function f(i)
    return (("%07d:abcdefghijklmnopqrstuvwxyz"):format(i)):rep(30841):sub(1, 1 << 20)
  end
  local function churn()
    collectgarbage("collect")
    collectgarbage("collect")
    collectgarbage("collect")
    for k = 1, 200 do
      local s = string.char(65 + k % 26):rep(1024):rep(1024)
      assert(#s == 1 << 20)
    end
  end

  -- A write parked on a full FIFO: the kernel copies the string once the FIFO drains.
  local r = luring.queue_init(8, 0)
  local rfd, wfd = helper.fifo()
  local filler = ("-"):rep(65536)
  for i = 1, 5 do
    local wres
    assert(luring.write(r, wfd, filler, 0, function(_, res) wres = res end))
    assert(luring.submit_and_wait(r, 1) == 1)
    assert(luring.do_cqes(r) == 1)
    assert(wres == 65536, wres)  -- the FIFO is full now
    wres = nil
    assert(luring.write(r, wfd, f(i), 0, function(_, res) wres = res end))
    assert(luring.submit(r) == 1)
    assert(luring.do_cqes(r) == 0 and wres == nil, "the write did not park")
    churn()
    -- Drain it one read at a time, each for what is still due. Two reads in flight can
    -- complete in the other order than the bytes they took (on 5.10 and 6.1 each waits
    -- in its own io-wq worker: two 64 KiB chunks came swapped), and a read still in
    -- flight after the loop would take the next round's filler (that write then does
    -- not park). The string is not kept here: only its length.
    local parts, have = {}, 0
    local function due() return 65536 + (wres or 1 << 20) - have end
    while due() > 0 do
      local done = false
      local h = assert(luring.read(r, rfd, math.min(65536, due()), 0, function(_, res, data)
        done = true
        if res == -luring.errno.ECANCELED then return end
        assert(res >= 0, luring.strerror(res))
        parts[#parts + 1] = data
        have = have + res
      end))
      assert(luring.submit(r) == 1)
      helper.run_until(r, function() return done or due() <= 0 end)
      if not done then  -- the write ended short: nothing more will come for this read
        assert(luring.cancel(r, h, function() end))
        helper.run_until(r, function() return done end)
      end
    end
    assert(wres > 0, luring.strerror(wres))
    local data = table.concat(parts)
    assert(#data == 65536 + wres)
    assert(data:sub(1, 65536) == filler)
    if data:sub(65537) ~= f(i):sub(1, wres) then
      error(("round %d: the FIFO got other bytes than the string written"):format(i))
    end
  end
  r:close()
  assert(uv.fs_close(rfd) and uv.fs_close(wfd))

  -- send with MSG_WAITALL on a full TCP connection: the kernel copies all 1 MiB after
  -- the churn, bit by bit as the peer reads.
  -- Fixed buffers (no autotuning): otherwise the connection takes more as it grows its
  -- buffers, and after the fill loop's EAGAIN the whole 1 MiB could still go at once.
  r = luring.queue_init(8, 0)
  local client, peer = helper.tcp_pair()
  assert(luring.setsockopt(client:getfd(), "sndbuf", 65536))
  assert(luring.setsockopt(peer:getfd(), "rcvbuf", 65536))
  client:settimeout(0)
  peer:settimeout(10)
  local chunk = ("="):rep(65536)
  for i = 1, 5 do
    local queued = 0
    repeat
      local n, _, partial = client:send(chunk)
      queued = queued + math.tointeger(n or partial)
    until not n
    local sres
    assert(luring.send(r, client:getfd(), f(i), luring.msg.WAITALL,
                       function(_, res) sres = res end))
    assert(luring.submit(r) == 1)
    assert(luring.do_cqes(r) == 0 and sres == nil, "the send did not park")
    churn()
    assert(peer:receive(queued) == ("="):rep(queued))
    local data = assert(peer:receive(1 << 20))
    helper.run_until(r, function() return sres ~= nil end)
    assert(sres == 1 << 20, luring.strerror(sres))
    if data ~= f(i) then
      error(("round %d: the peer got other bytes than the string sent"):format(i))
    end
  end
  r:close()
  client:close()
  peer:close()
end)

helper.run_cases(cases)
