-- SPDX-License-Identifier: Apache-2.0
-- What the Lua benchmark scripts share: options, the timed loop, the RESULT line and the
-- read-4k offsets. It mirrors tools/bench/bench.hpp, so a Lua run and a C++ run measure
-- the same way: a warm-up, then a measured time, the clock read every 64 operations.
local helper = require "luring_bench"

local bench = {}

bench.now = helper.now
bench.socket_pair = helper.socket_pair
bench.data_file = helper.data_file
bench.close = helper.close

bench.BLOCK = 4096
bench.MESSAGE = 64
local OFFSET_COUNT = 1 << 16
local CLOCK_EVERY = 64

-- Exits with meson's "skipped" status (a baseline that is not installed).
function bench.skip(why)
  io.stderr:write("SKIP: ", why, "\n")
  os.exit(77)
end

function bench.fail(...)
  io.stderr:write(string.format(...), "\n")
  os.exit(1)
end

-- `--name value` pairs over the defaults; numbers where the default is a number.
function bench.options(defaults)
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  local i = 1
  while i <= #arg do
    local name = arg[i]:match("^%-%-(.+)$")
    if not name or arg[i + 1] == nil then bench.fail("bad option %s", arg[i]) end
    name = name:gsub("-", "_")
    local value = arg[i + 1]
    if type(o[name]) == "number" or name == "ops" then
      value = tonumber(value) or bench.fail("--%s needs a number", name)
    end
    o[name] = value
    i = i + 2
  end
  return o
end

-- A meter for loops that cannot be written as "call batch() until done" (event-loop
-- callbacks): add(n) counts n operations and returns false once the run is over;
-- result() then gives { ops =, seconds = }.
function bench.meter(o)
  local now = helper.now
  local fixed = o.ops
  local measuring = fixed ~= nil
  local t0 = now()
  local deadline = measuring and math.huge or t0 + o.warmup
  local ops, since = 0, 0
  local result
  local function add(n)
    if measuring then ops = ops + n end
    if fixed then
      if ops < fixed then return true end
      result = { ops = ops, seconds = now() - t0 }
      return false
    end
    since = since + n
    if since < CLOCK_EVERY then return true end
    since = 0
    local t = now()
    if t < deadline then return true end
    if not measuring then
      measuring, t0, deadline, ops = true, t, t + o.seconds, 0
      return true
    end
    result = { ops = ops, seconds = t - t0 }
    return false
  end
  return add, function() return result end
end

-- Calls batch() (it does some operations and returns how many) until the run is over.
function bench.timed(o, batch)
  local add, result = bench.meter(o)
  while add(batch()) do end
  return result()
end

function bench.report(r)
  io.stdout:write(string.format("RESULT ops=%d seconds=%.6f ops_per_sec=%.1f\n",
    r.ops, r.seconds, r.ops / r.seconds))
  io.stdout:flush()
end

-- The read-4k offsets: the same xorshift64 sequence as make_offsets() in bench.hpp.
function bench.offsets()
  local out = {}
  local x = 0x9e3779b97f4a7c15
  local blocks = helper.file_size // bench.BLOCK
  for i = 1, OFFSET_COUNT do
    x = x ~ (x << 13)
    x = x ~ (x >> 7)
    x = x ~ (x << 17)
    out[i] = ((x >> 20) & (blocks - 1)) * bench.BLOCK
  end
  return out, OFFSET_COUNT - 1
end

-- A luring ring, or skip the run when this kernel (or a seccomp filter) allows no ring
-- at all; an error when only these flags are refused.
function bench.ring(luring, entries, flags)
  local ok, ring = pcall(luring.queue_init, entries, flags)
  if ok then return ring end
  if not pcall(luring.queue_init, 2) then bench.skip("io_uring unavailable: " .. tostring(ring)) end
  bench.fail("queue_init: %s", tostring(ring))
end

-- async.run's options for the --entries and --setup-flags of a run.
-- The ring flags are --setup-flags, as the callback forms' rings get (not async.run's
-- default, DEFER_TASKRUN), so both forms run on the same kind of ring. --recv-multishot
-- on: sockets receive by one multishot recv each (the run's option).
function bench.async_options(o)
  return {
    entries = o.entries, flags = o.setup_flags, recv_multishot = o.recv_multishot == "on",
    receives_last = o.receives_last ~= "off",
  }
end

-- The coroutine form of a batch workload: `tasks` tasks of luring.async, each running
-- body(f, add) on the file `path` opened with `mode`. A body does its operation in a loop
-- written as a user would (the call in the loop, no function in between) and calls
-- add(tasks) once per `tasks` operations, as the callback loops count once per batch,
-- returning when add says the run is over.
function bench.run_async(o, tasks, path, mode, body)
  local async = require "luring.async"
  local add, result = bench.meter(o)
  async.run(bench.async_options(o), function()
    local f = assert(async.open(path, mode))
    local workers = {}
    for i = 1, tasks do workers[i] = async.spawn(body, f, add) end
    for i = 1, tasks do assert(workers[i]:join()) end
    f:close()
  end)
  return result()
end

-- require(name), or skip the run when it is not installed.
function bench.need(name)
  local ok, mod = pcall(require, name)
  if not ok then bench.skip(name .. " is not installed") end
  return mod
end

return bench
