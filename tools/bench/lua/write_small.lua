-- SPDX-License-Identifier: Apache-2.0
-- write-small: 64-byte writes to /dev/null, `batch` per submit (default 32).
--   lua5.4 write_small.lua --impl luring|async|io|luv-sync|luv-async [--batch 32]
--     [--seconds 0.25] [--warmup 0.05] [--ops N] [--entries 256] [--setup-flags 0]
-- Prints the RESULT line bench-run reads. LUA_CPATH must find luring.so and
-- luring_bench.so, LUA_PATH this folder (bench-run sets both).
local bench = require "bench"

local o = bench.options {
  impl = "luring", batch = 32, seconds = 0.25, warmup = 0.05, entries = 256, setup_flags = 0,
}
local payload = string.rep("x", bench.MESSAGE)
local batch_size = o.batch
local impls = {}

-- Queue `batch` writes with one callback, submit once, handle every completion.
function impls.luring()
  local luring = require "luring"
  -- Module functions in locals, as hot Lua loops are written: no method lookup per call.
  local write = luring.write
  local submit_and_wait, do_cqes = luring.submit_and_wait, luring.do_cqes
  local ring = bench.ring(luring, o.entries, o.setup_flags)
  local fd = luring.open_file("/dev/null", "w")
  if fd < 0 then bench.fail("open /dev/null: %s", luring.strerror(fd)) end
  local pending = 0
  local function on_write(_, res)
    if res ~= bench.MESSAGE then error("write: " .. luring.strerror(res)) end
    pending = pending - 1
  end
  return function()
    for _ = 1, batch_size do write(ring, fd, payload, 0, on_write) end
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

-- Plain Lua io, unbuffered so that each write is one write(2) as in the others.
function impls.io()
  local f = assert(io.open("/dev/null", "wb"))
  f:setvbuf("no")
  return function()
    for _ = 1, batch_size do assert(f:write(payload)) end
    return batch_size
  end
end

function impls.luv_sync()
  local uv = bench.need "luv"
  local fd = assert(uv.fs_open("/dev/null", "w", 0))
  return function()
    for _ = 1, batch_size do
      local n, err = uv.fs_write(fd, payload, 0)
      if n ~= bench.MESSAGE then bench.fail("fs_write: %s", err) end
    end
    return batch_size
  end
end

-- `batch` requests handed to libuv's thread pool, then the loop run until all are done.
function impls.luv_async()
  local uv = bench.need "luv"
  local fd = assert(uv.fs_open("/dev/null", "w", 0))
  local function on_write(err, n)
    if n ~= bench.MESSAGE then bench.fail("fs_write: %s", err) end
  end
  return function()
    for _ = 1, batch_size do uv.fs_write(fd, payload, 0, on_write) end
    uv.run()
    return batch_size
  end
end

-- The coroutine form: `batch` tasks of luring.async, each writing with write_at in a
-- loop; the scheduler submits once per round for all of them.
local function run_async()
  return bench.run_async(o, batch_size, "/dev/null", "w", function(f, add)
    local done = 0
    while true do
      if not f:write_at(payload, 0) then error("write_at failed") end
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
