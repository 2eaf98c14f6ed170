-- SPDX-License-Identifier: Apache-2.0
-- An HTTP/1.1 keep-alive server answering every request with "Hello, World!":
-- lua5.4 http_hello.lua PORT. Runs until killed; the server benchmark drives it.
local async = require "luring.async"

local port = tonumber(arg[#arg]) or 8080
local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                 .. "Hello, World!"

local function serve(client)
  while true do
    local line = client:receive("*l")
    if not line then break end               -- the client closed (or an error)
    repeat                                   -- the headers, up to the blank line
      local header = client:receive("*l")
      if not header then return client:close() end
    until header == ""
    if not client:send(RESPONSE) then break end
    if line:find("HTTP/1.0", 1, true) then break end  -- 1.0: one response per connection
  end
  client:close()
end

async.run(function()
  local server = assert(async.listen("127.0.0.1", port, 1024))
  while true do
    local client = server:accept()
    if client then async.spawn(serve, client) end
  end
end)
