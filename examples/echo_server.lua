-- SPDX-License-Identifier: Apache-2.0
-- A TCP echo server on luring.async: lua5.4 echo_server.lua [PORT]
-- Prints the port it listens on, then echoes every line until killed.
local async = require "luring.async"

async.run(function()
  local server = assert(async.listen("127.0.0.1", tonumber(arg[1]) or 0))
  print("listening on port " .. select(2, server:getsockname()))
  io.stdout:flush()
  while true do
    local client = assert(server:accept())
    async.spawn(function()
      client:settimeout(10)
      for line in client:lines() do client:send(line .. "\n") end
      client:close()
    end)
  end
end)
