-- SPDX-License-Identifier: Apache-2.0
-- The workloads bench-alloc counts allocations of: each function does `batches` rounds
-- of `ctx.batch` requests, one submit each, every completion handled by a callback, the
-- way the benchmark scripts do. Returns the workloads, or nil and why to skip.
local ctx = ...
local luring = require "luring"

local ok, ring = pcall(luring.queue_init, 256)
if not ok then return nil, tostring(ring) end

local BATCH = ctx.batch
local MESSAGE = 64
local BLOCK = 4096
local payload = string.rep("x", MESSAGE)

local devnull = luring.open_file("/dev/null", "w")
assert(devnull >= 0, "open /dev/null")
-- A 1 MiB file of data for read (its blocks are read in a cycle).
local path = os.tmpname()
do
  local f = assert(io.open(path, "wb"))
  f:write(string.rep("r", 1 << 20))
  f:close()
end
local file = luring.open_file(path, "r")
os.remove(path)
assert(file >= 0, "open data file")
local sock_a, sock_b = ctx.socket_a, ctx.socket_b

local pending = 0
local function on_write(_, res)
  if res ~= MESSAGE then error("write/send: " .. luring.strerror(res)) end
  pending = pending - 1
end
local function on_read(_, res, data)
  if res ~= #data or res <= 0 then error("read/recv: " .. luring.strerror(res)) end
  pending = pending - 1
end
local function on_zero(_, res)
  if res ~= 0 and res ~= -luring.errno.ETIME then error("op: " .. luring.strerror(res)) end
  pending = pending - 1
end
local function complete()
  pending = BATCH
  ring:submit_and_wait(BATCH)
  ring:do_cqes()
  while pending > 0 do
    ring:submit_and_wait(pending)
    ring:do_cqes()
  end
end

local w = {}
local next_block = 0

function w.write(batches)
  for _ = 1, batches do
    for _ = 1, BATCH do ring:write(devnull, payload, 0, on_write) end
    complete()
  end
end

function w.read(batches)
  for _ = 1, batches do
    for _ = 1, BATCH do
      ring:read(file, BLOCK, (next_block & 255) * BLOCK, on_read)
      next_block = next_block + 1
    end
    complete()
  end
end

function w.send(batches)
  local drain = ctx.drain
  for _ = 1, batches do
    for _ = 1, BATCH do ring:send(sock_a, payload, 0, on_write) end
    complete()
    drain(sock_b, BATCH * MESSAGE)
  end
end

function w.recv(batches)
  local fill = ctx.fill
  for _ = 1, batches do
    fill(sock_a, BATCH * MESSAGE)
    for _ = 1, BATCH do ring:recv(sock_b, MESSAGE, 0, on_read) end
    complete()
  end
end

-- One op of each newer area: files (fsync), sockets (sendmsg), time and control (nop,
-- timeout). None returns data, so none may allocate.
function w.fsync(batches)
  for _ = 1, batches do
    for _ = 1, BATCH do ring:fsync(file, false, on_zero) end
    complete()
  end
end

function w.sendmsg(batches)
  local drain = ctx.drain
  for _ = 1, batches do
    for _ = 1, BATCH do ring:sendmsg(sock_a, payload, nil, 0, on_write) end
    complete()
    drain(sock_b, BATCH * MESSAGE)
  end
end

function w.nop(batches)
  for _ = 1, batches do
    for _ = 1, BATCH do ring:nop(on_zero) end
    complete()
  end
end

function w.timeout(batches)
  for _ = 1, batches do
    for _ = 1, BATCH do ring:timeout(0, 0, nil, on_zero) end
    complete()
  end
end

return w
