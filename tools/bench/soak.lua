-- SPDX-License-Identifier: Apache-2.0
-- soak: 10 M mixed operations, half through callbacks on one long-lived ring, half
-- through luring.async tasks, with the resident set size (/proc/self/statm) and the Lua
-- heap (collectgarbage("count"), after a full collection) sampled every 1 M operations.
-- Exits 1 if either grew by more than 10% over its value at the end of the warm-up
-- (the first 2 M operations): a leak of a few bytes per request shows as megabytes here.
--
--   meson setup /tmp/build-rel -Dbuildtype=release && meson compile -C /tmp/build-rel soak
--
-- or directly (LUA_CPATH must find luring.so and luring_bench.so, LUA_PATH lua/):
--   lua5.4 tools/bench/soak.lua [--ops 10e6] [--every 1e6] [--warmup 2e6] [--limit 0.10]
--
-- The operations, each counted once: write and read back 64 bytes of a file (a linked
-- pair), the same through a luring.buffer (write_from, read_into), send and receive 64
-- bytes over a unix socket pair, 64 bytes more received by a multishot recv (the
-- ring's provided buffers), a 0-second timeout, a nop, openat then close_fd; and as
-- tasks: sock:send / sock:receive(64) (every other block with recv_multishot),
-- file:write_at / file:read_at, file:write_from / file:read_into, async.sleep (a kernel
-- timeout), a nop through async.ring() with the task's coroutine as callback, async.open
-- then file:close. Every result is checked.
local luring = require "luring"
local async = require "luring.async"
local lb = require "luring_bench"

local fmt = string.format

local opts = { ops = 10e6, every = 1e6, warmup = 2e6, limit = 0.10 }
do
  local i = 1
  while arg[i] do
    local k = arg[i]:match("^%-%-(%w+)$")
    if not k or opts[k] == nil or not tonumber(arg[i + 1]) then
      io.stderr:write("usage: soak.lua [--ops N] [--every N] [--warmup N] [--limit F]\n")
      os.exit(2)
    end
    opts[k] = tonumber(arg[i + 1])
    i = i + 2
  end
end
local TOTAL, EVERY, WARMUP, LIMIT = math.floor(opts.ops), math.floor(opts.every),
  math.floor(opts.warmup), opts.limit

local function fail(...)
  io.stderr:write("soak: ", fmt(...), "\n")
  os.exit(1)
end

local PAGE_KIB = 4  -- statm counts pages; 4 KiB on x86-64 and arm64 (the ratio is what counts)
local function rss_kib()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * PAGE_KIB
end

local path = os.tmpname()
local path2 = os.tmpname()
do
  local f = assert(io.open(path2, "w"))
  f:write("soak\n")
  f:close()
end

local MSG = string.rep("m", 63) .. "\n"  -- 64 bytes

-- ---- Callbacks: one ring for the whole run -----------------------------------------------

local ring = luring.queue_init(64)
local file_fd = luring.open_file(path, "w+")
if file_fd < 0 then fail("open %s: %s", path, luring.strerror(file_fd)) end
local sa, sb = lb.socket_pair("unix")
if not sa then fail("socket pair: %s", tostring(sb)) end
local sc, sd = lb.socket_pair("unix")
if not sc then fail("socket pair: %s", tostring(sd)) end
local out_buf, in_buf = luring.buffer(64), luring.buffer(128)
out_buf:set(MSG)

local cb_done = 0
local pending = 0
local function on_write(_, res)
  if res ~= 64 then fail("write: %s", luring.strerror(res)) end
  pending, cb_done = pending - 1, cb_done + 1
end
local function on_read(_, res, data)
  if res ~= 64 or data ~= MSG then fail("read back: %d %q", res, tostring(data)) end
  pending, cb_done = pending - 1, cb_done + 1
end
local function on_send(_, res)
  if res ~= 64 then fail("send: %s", luring.strerror(res)) end
  pending, cb_done = pending - 1, cb_done + 1
end
local function on_recv(_, res, data)
  if res ~= 64 or data ~= MSG then fail("recv: %d %q", res, tostring(data)) end
  pending, cb_done = pending - 1, cb_done + 1
end
local function on_read_into(_, res)
  if res ~= 64 or in_buf:get(1, 64) ~= MSG then fail("read_into: %s", luring.strerror(res)) end
  pending, cb_done = pending - 1, cb_done + 1
end
-- The multishot recv on sd: armed again whenever it ends (-ENOBUFS is no error); what it
-- brings is counted by the message.
local ms_armed, ms_bytes, ms_counted = false, 0, 0
local on_chunk
function on_chunk(_, res, data, more)
  if res > 0 then
    -- A stream: the chunk is MSG repeated, from where the last one stopped.
    local want = (MSG:sub(ms_bytes % 64 + 1) .. string.rep(MSG, res // 64 + 1)):sub(1, res)
    if data ~= want then fail("recv_multishot: other bytes") end
    ms_bytes = ms_bytes + res
  elseif res ~= -luring.errno.ENOBUFS then
    fail("recv_multishot: %s", luring.strerror(res))
  end
  if not more then ms_armed = false end
end
local function on_timeout(_, res)
  if res ~= -luring.errno.ETIME then fail("timeout: %s", luring.strerror(res)) end
  pending, cb_done = pending - 1, cb_done + 1
end
local function on_nop(_, res)
  if res ~= 0 then fail("nop: %d", res) end
  pending, cb_done = pending - 1, cb_done + 1
end
local function on_close(_, res)
  if res ~= 0 then fail("close_fd: %s", luring.strerror(res)) end
  pending, cb_done = pending - 1, cb_done + 1
end
local function on_open(_, fd)
  if fd < 0 then fail("openat: %s", luring.strerror(fd)) end
  pending, cb_done = pending - 1, cb_done + 1
  -- The close is queued from the callback, as a program would.
  if not ring:close_fd(fd, on_close) then fail("close_fd: SQ full") end
  pending = pending + 1
end

local function must(h, what)
  if not h then fail("%s: SQ full", what) end
end

-- 4 rounds of 9 operations (36 SQEs; the closes come from callbacks), then wait for all.
local round = 0
local function cb_batch()
  for _ = 1, 4 do
    round = round + 1
    local off = (round % 256) * 64
    local a, b = ring:link { { "write", file_fd, MSG, off, on_write },
                             { "read", file_fd, 64, off, on_read } }
    must(a and b, "link")
    local c, d = ring:link { { "write_from", file_fd, out_buf, off + 16384, nil, nil, on_write },
                             { "read_into", file_fd, in_buf, off + 16384, 64, nil, on_read_into } }
    must(c and d, "link")
    if not ms_armed then
      must(ring:recv_multishot(sd, 0, on_chunk), "recv_multishot")
      ms_armed = true
    end
    must(ring:send(sc, MSG, luring.msg.NOSIGNAL, on_send), "send")
    must(ring:recv(sb, 64, luring.msg.WAITALL, on_recv), "recv")
    must(ring:send(sa, MSG, luring.msg.NOSIGNAL, on_send), "send")
    must(ring:timeout(0, 0, nil, on_timeout), "timeout")
    must(ring:nop(on_nop), "nop")
    must(ring:openat(path2, "r", nil, on_open), "openat")
    pending = pending + 10
  end
  while pending > 0 or ms_counted + 4 * 64 > ms_bytes do
    if not ms_armed then  -- it ended (-ENOBUFS) with data still to come
      must(ring:recv_multishot(sd, 0, on_chunk), "recv_multishot")
      ms_armed = true
    end
    local ret = ring:submit_and_wait(1)
    if ret < 0 and ret ~= -luring.errno.EINTR then
      fail("submit_and_wait: %s", luring.strerror(ret))
    end
    ring:do_cqes()
  end
  ms_counted = ms_counted + 4 * 64
  cb_done = cb_done + 4
end

local function callbacks(n)
  local target = cb_done + n
  while cb_done < target do cb_batch() end
end

-- ---- Tasks: one async.run per block ---------------------------------------------------------

local async_done = 0
local block = 0
local function tasks(n)
  local target = async_done + n
  block = block + 1
  async.run({ entries = 64, recv_multishot = block % 2 == 0 }, function()
    local stop = false
    local a, b = lb.socket_pair("unix")
    local ta, tb = async.wrap(a), async.wrap(b)
    local f = assert(async.open(path, "r+"))
    local workers = {}
    local function worker(fn) workers[#workers + 1] = async.spawn(fn) end
    -- A sender and a receiver; the receiver stops at the sender's last message.
    worker(function()
      while not stop do
        local last, err = ta:send(MSG)
        if last ~= 64 then fail("task send: %s %s", tostring(last), tostring(err)) end
        async_done = async_done + 1
      end
      ta:send("STOP" .. string.rep(".", 59) .. "\n")
    end)
    worker(function()
      while true do
        local data, err = tb:receive(64)
        if not data then fail("task receive: %s", tostring(err)) end
        if data:sub(1, 4) == "STOP" then break end
        if data ~= MSG then fail("task receive: other bytes") end
        async_done = async_done + 1
      end
    end)
    worker(function()
      local k = 0
      while not stop do
        k = k + 1
        local off = 20000 + (k % 128) * 64
        local ok, err = f:write_at(MSG, off)
        if not ok then fail("write_at: %s", tostring(err)) end
        local back = f:read_at(64, off)
        if back ~= MSG then fail("read_at: %q", tostring(back)) end
        async_done = async_done + 2
      end
    end)
    worker(function()
      local k = 0
      local out, back = luring.buffer(64), luring.buffer(64)
      out:set(MSG)
      while not stop do
        k = k + 1
        local off = 40000 + (k % 128) * 64
        local ok, err = f:write_from(out, off)
        if not ok then fail("write_from: %s", tostring(err)) end
        if f:read_into(back, off) ~= 64 or back:get() ~= MSG then fail("read_into") end
        async_done = async_done + 2
      end
    end)
    for _ = 1, 4 do
      worker(function()
        while not stop do
          async.sleep(1e-6)
          async_done = async_done + 1
        end
      end)
    end
    worker(function()
      local r = async.ring()
      local co = coroutine.running()
      while not stop do
        if r:nop(co) then
          local _, res = coroutine.yield()
          if res ~= 0 then fail("nop in a task: %s", tostring(res)) end
          async_done = async_done + 1
        else
          async.sleep(0)
        end
      end
    end)
    worker(function()
      while not stop do
        local g, err = async.open(path2, "r")
        if not g then fail("async.open: %s", tostring(err)) end
        g:close()
        async_done = async_done + 2
      end
    end)
    while async_done < target do async.sleep(0.005) end
    stop = true
    for _, w in ipairs(workers) do
      local ok, err = w:join()
      if not ok then fail("task: %s", tostring(err)) end
    end
    ta:close()
    tb:close()
    f:close()
  end)
end

-- ---- The run -----------------------------------------------------------------------------

-- Made before the run, so recording a sample allocates nothing the next one would see.
local nsamples = (TOTAL + EVERY - 1) // EVERY
local S_ops, S_rss, S_heap, S_wall = {}, {}, {}, {}
for i = 1, nsamples do S_ops[i], S_rss[i], S_heap[i], S_wall[i] = 0, 0, 0.0, 0.0 end
local t0 = os.clock()
local wall0 = lb.now()
local done = 0
local k = 0
while done < TOTAL do
  local n = math.min(EVERY, TOTAL - done)
  callbacks(n // 2)
  tasks(n - n // 2)
  done = cb_done + async_done
  collectgarbage("collect")
  collectgarbage("collect")
  k = k + 1
  S_ops[k], S_rss[k], S_heap[k], S_wall[k] = done, rss_kib(), collectgarbage("count"),
                                             lb.now() - wall0
  io.stderr:write(fmt("soak: %.1f M ops, RSS %d KiB, Lua heap %.0f KiB, %.1f s\n", done / 1e6,
                      S_rss[k], S_heap[k], S_wall[k]))
end
local cpu = os.clock() - t0
local samples = {}
for i = 1, k do
  samples[i] = { ops = S_ops[i], rss = S_rss[i], heap = S_heap[i], wall = S_wall[i] }
end
ring:close()
luring.close_fd_now(file_fd)
lb.close(sa)
lb.close(sb)
lb.close(sc)
lb.close(sd)
os.remove(path)
os.remove(path2)

-- The baseline: the last sample of the warm-up (the first WARMUP / EVERY samples).
local nwarm = math.max(1, math.min(#samples, math.floor(WARMUP / EVERY + 0.5)))
local base = samples[nwarm]
print(fmt("Soak: %d mixed operations (%d through callbacks, %d in tasks), luring %s, %s, " ..
          "%.0f s CPU", done, cb_done, async_done, luring._VERSION or "?", _VERSION, cpu))
print()
print("| ops | RSS (KiB) | RSS vs warm-up | Lua heap (KiB) | heap vs warm-up | wall s | ops/s |")
print("|---:|---:|---:|---:|---:|---:|---:|")
local worst_rss, worst_heap = 0, 0
local prev_ops, prev_wall = 0, 0
for i, s in ipairs(samples) do
  local grow_rss = s.rss / base.rss - 1
  local grow_heap = s.heap / base.heap - 1
  local after = i > nwarm
  if after then
    worst_rss = math.max(worst_rss, grow_rss)
    worst_heap = math.max(worst_heap, grow_heap)
  end
  print(fmt("| %.1f M%s | %d | %s | %.0f | %s | %.1f | %.0f |", s.ops / 1e6,
            after and "" or " (warm-up)",
            s.rss, after and fmt("%+.1f%%", grow_rss * 100) or "", s.heap,
            after and fmt("%+.1f%%", grow_heap * 100) or "", s.wall,
            (s.ops - prev_ops) / (s.wall - prev_wall)))
  prev_ops, prev_wall = s.ops, s.wall
end
print()
local ok = worst_rss <= LIMIT and worst_heap <= LIMIT
print(fmt("Largest growth after the warm-up: RSS %+.1f%%, Lua heap %+.1f%% (limit %+.0f%%): %s",
          worst_rss * 100, worst_heap * 100, LIMIT * 100, ok and "PASS" or "FAIL"))
os.exit(ok and 0 or 1)
