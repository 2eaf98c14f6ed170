-- SPDX-License-Identifier: Apache-2.0
-- Copies a file with many reads and writes in flight: lua5.4 cp.lua FROM TO
-- Eight tasks each copy every eighth 512 KiB block with read_into/write_from (read_at and
-- write_at with a luring.buffer: no Lua string per block), so the kernel always has
-- several requests to work on.
local luring = require "luring"
local async = require "luring.async"

local from, to = arg[1], arg[2]
assert(from and to, "usage: cp.lua FROM TO")
local BLOCK, WORKERS = 512 << 10, 8

async.run(function()
  local src = assert(async.open(from, "r"))
  local dst = assert(async.open(to, "w"))
  local size = assert(async.stat(from)).size
  local workers = {}
  for w = 0, WORKERS - 1 do
    workers[#workers + 1] = async.spawn(function()
      local buf = luring.buffer(BLOCK)
      for offset = w * BLOCK, size - 1, WORKERS * BLOCK do
        local n = assert(src:read_into(buf, offset))
        assert(dst:write_from(buf, offset, n))
      end
    end)
  end
  for _, t in ipairs(workers) do assert(t:join()) end
  src:close()
  dst:close()
end)
