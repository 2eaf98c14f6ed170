-- SPDX-License-Identifier: Apache-2.0
-- An HTTP/1.1 keep-alive server answering every request with "Hello, World!":
-- lua5.4 http_hello.lua PORT. Runs until killed; the server benchmark drives it.
local async = require "luring.async"

local port = tonumber(arg[#arg]) or 8080
local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                 .. "Hello, World!"

local function serve(client)
  local next_head = client:receiveuntil("\r\n\r\n")  -- a request's head: up to the blank line
  while true do
    local head = next_head()
    if not head then break end               -- the client closed (or an error)
    if not client:send(RESPONSE) then break end
    local eol = head:find("\r", 1, true) or #head + 1  -- the end of the request line
    if head:sub(eol - 8, eol - 1) == "HTTP/1.0" then break end  -- one response only
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
