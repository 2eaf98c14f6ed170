-- SPDX-License-Identifier: Apache-2.0
-- An HTTP/1.0 client on luring.async: lua5.4 http_get.lua HOST PORT [PATH]
-- Prints the status line, then the body.
local async = require "luring.async"

local host, port, path = arg[1], tonumber(arg[2]), arg[3] or "/"
assert(host and port, "usage: http_get.lua HOST PORT [PATH]")

async.run(function()
  local c = assert(async.connect(host, port, 5))
  c:settimeout(10)
  assert(c:send(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n"):format(path, host)))
  print(assert(c:receive("*l")))           -- the status line
  repeat local header = assert(c:receive("*l")) until header == ""
  io.write(assert(c:receive("*a")))         -- the body, until the server closes
  c:close()
end)
