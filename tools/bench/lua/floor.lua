-- SPDX-License-Identifier: Apache-2.0
-- What no Lua callback binding can go below: per operation, one call into C with the
-- arguments of write() and one call of a Lua callback, and no I/O at all.
--   lua5.4 floor.lua [iterations]
local n = tonumber(arg[1]) or 20000000
local c_function = rawequal  -- a C function that does almost nothing
local done = 0
local function callback(_, _) done = done + 1 end
local start = os.clock()
for i = 1, n do
  c_function(i, i, "payload", 0, callback)
  callback(nil, 64)
end
local elapsed = os.clock() - start
assert(done == n)
print(("%.1f ns per operation (a C call and a Lua callback, no I/O)"):format(elapsed / n * 1e9))
