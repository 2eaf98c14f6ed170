-- SPDX-License-Identifier: Apache-2.0
-- read-4k: random 4 KiB reads from a 64 MiB file in the page cache, `batch` per submit
-- (the depth; default 32). Offsets are the same sequence in every implementation.
--   lua5.4 read_4k.lua --impl luring|async|io|luv-sync|luv-async --file PATH [--batch 32]
--     [--seconds 0.25] [--warmup 0.05] [--ops N] [--entries 256] [--setup-flags 0]
local bench = require "bench"

local o = bench.options {
  impl = "luring", batch = 32, file = "read-4k.dat", seconds = 0.25, warmup = 0.05,
  entries = 256, setup_flags = 0,
}
assert(bench.data_file(o.file))
local BLOCK = bench.BLOCK
local offsets, mask = bench.offsets()
local next_off = 0
local batch_size = o.batch
local impls = {}

function impls.luring()
  local luring = require "luring"
  -- Module functions in locals, as hot Lua loops are written: no method lookup per call.
  local read = luring.read
  local submit_and_wait, do_cqes = luring.submit_and_wait, luring.do_cqes
  local ring = bench.ring(luring, o.entries, o.setup_flags)
  local fd = luring.open_file(o.file, "r")
  if fd < 0 then bench.fail("open %s: %s", o.file, luring.strerror(fd)) end
  local pending = 0
  local function on_read(_, res, data)
    if res ~= BLOCK or #data ~= BLOCK then error("read: " .. luring.strerror(res)) end
    pending = pending - 1
  end
  return function()
    for _ = 1, batch_size do
      read(ring, fd, BLOCK, offsets[(next_off & mask) + 1], on_read)
      next_off = next_off + 1
    end
    pending = batch_size
    submit_and_wait(ring, batch_size)
    do_cqes(ring)
    while pending > 0 do
      submit_and_wait(ring, pending)
      do_cqes(ring)
    end
    return batch_size
  end
end

-- Plain Lua io: seek, then read (stdio underneath).
function impls.io()
  local f = assert(io.open(o.file, "rb"))
  return function()
    for _ = 1, batch_size do
      f:seek("set", offsets[(next_off & mask) + 1])
      next_off = next_off + 1
      local data = f:read(BLOCK)
      if #data ~= BLOCK then bench.fail("short read") end
    end
    return batch_size
  end
end

function impls.luv_sync()
  local uv = bench.need "luv"
  local fd = assert(uv.fs_open(o.file, "r", 0))
  return function()
    for _ = 1, batch_size do
      local data, err = uv.fs_read(fd, BLOCK, offsets[(next_off & mask) + 1])
      next_off = next_off + 1
      if not data or #data ~= BLOCK then bench.fail("fs_read: %s", err) end
    end
    return batch_size
  end
end

-- `batch` reads handed to libuv's thread pool, then the loop run until all are done.
function impls.luv_async()
  local uv = bench.need "luv"
  local fd = assert(uv.fs_open(o.file, "r", 0))
  local function on_read(err, data)
    if not data or #data ~= BLOCK then bench.fail("fs_read: %s", err) end
  end
  return function()
    for _ = 1, batch_size do
      uv.fs_read(fd, BLOCK, offsets[(next_off & mask) + 1], on_read)
      next_off = next_off + 1
    end
    uv.run()
    return batch_size
  end
end

-- The coroutine form: `batch` tasks of luring.async, each reading with read_at in a
-- loop (the next offset of the shared sequence each time).
local function run_async()
  return bench.run_async(o, batch_size, o.file, "r", function(f, add)
    local done = 0
    while true do
      local data = f:read_at(BLOCK, offsets[(next_off & mask) + 1])
      next_off = next_off + 1
      if not data or #data ~= BLOCK then error("read_at failed") end
      done = done + 1
      if done == batch_size then
        done = 0
        if not add(batch_size) then return end
      end
    end
  end)
end

if o.impl == "async" then
  bench.report(run_async())
else
  local make = impls[o.impl:gsub("-", "_")] or bench.fail("unknown --impl %s", o.impl)
  bench.report(bench.timed(o, make()))
end
