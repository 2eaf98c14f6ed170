-- SPDX-License-Identifier: Apache-2.0
-- lua5.4 echo_roundtrip.lua: does an installed luring work? Run it from anywhere, with no
-- LUA_PATH/LUA_CPATH pointing into a source tree: it requires luring and luring.async
-- from wherever Lua finds them (meson install, luarocks make), then echoes lines and a
-- 1 MiB line over loopback TCP, the server and the client as two luring.async tasks.
-- Prints one line and exits 0 when every byte came back.
local luring = require "luring"
local async = require "luring.async"

-- (No "\r": LuaSocket's "*l" drops it.)
local lines = { "hello", "", "tabs\tand UTF-8: \u{2713}", ("x"):rep(1 << 20) }
local sent = 0
for _, l in ipairs(lines) do sent = sent + #l + 1 end

local elapsed
async.run(function()
  local t0 = async.now()
  local server = assert(async.listen("127.0.0.1", 0))
  local _, port = server:getsockname()

  local echo = async.spawn(function()
    local peer = assert(server:accept())
    peer:settimeout(10)
    for line in peer:lines() do assert(peer:send(line .. "\n")) end
    peer:close()
  end)

  local client = assert(async.connect("127.0.0.1", port, 5))
  client:settimeout(10)
  -- Send everything from a task of its own while this one reads: 1 MiB does not fit in
  -- the socket buffers, so one task doing both in turn would deadlock the echo.
  local writer = async.spawn(function()
    for _, l in ipairs(lines) do assert(client:send(l .. "\n")) end
  end)
  for i, want in ipairs(lines) do
    local got, err = client:receive("*l")
    assert(got, ("line %d: %s"):format(i, tostring(err)))
    assert(got == want, ("line %d: %d bytes came back, %d sent"):format(i, #got, #want))
  end
  assert(writer:join())
  client:close()
  assert(echo:join())
  server:close()
  elapsed = async.now() - t0
end)

print(("echo round trip ok: %d lines, %d bytes over 127.0.0.1 in %.1f ms (luring %s, %s)")
  :format(#lines, sent, elapsed * 1000, tostring(luring._VERSION or "?"), async._VERSION))
