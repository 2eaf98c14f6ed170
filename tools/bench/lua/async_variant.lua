-- SPDX-License-Identifier: Apache-2.0
-- Loaded before a luring.async program (lua5.4 -l async_variant prog.lua) by the server
-- benchmark: LURING_BENCH_ASYNC names the async.run options its runs get, so the same
-- unchanged program is measured with and without a feature.
--   default    as the program asks (DEFER_TASKRUN where the kernel has it)
--   multishot  recv_multishot = true
--   plain      flags = 0 (no DEFER_TASKRUN)
--   ordered    receives_last = false (each round's requests in the order made)
--   fd         register_ring = false (each enter by the ring's fd, not a registered slot)
--   ringsend   direct_send = false (every send an io_uring request)
local async = require "luring.async"

local variants = {
  default = {},
  multishot = { recv_multishot = true },
  plain = { flags = 0 },
  ordered = { receives_last = false },
  fd = { register_ring = false },
  ringsend = { direct_send = false },
}
local name = os.getenv("LURING_BENCH_ASYNC") or "default"
local extra = variants[name] or error("LURING_BENCH_ASYNC: no variant '" .. name .. "'")

local run = async.run
function async.run(a, ...)
  local options = {}
  if type(a) == "table" and getmetatable(a) == nil then
    for k, v in pairs(a) do options[k] = v end
  else
    return async.run({}, a, ...)
  end
  for k, v in pairs(extra) do options[k] = v end
  return run(options, ...)
end
