-- SPDX-License-Identifier: Apache-2.0
-- examples/http_hello.lua on luv: an HTTP/1.1 keep-alive server answering every request
-- with "Hello, World!". lua5.4 http_hello_luv.lua PORT
local uv = require "luv"

local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                 .. "Hello, World!"
local server = uv.new_tcp()
assert(server:bind("127.0.0.1", tonumber(arg[#arg]) or 8080))
assert(server:listen(1024, function(err)
  assert(not err, err)
  local client = uv.new_tcp()
  server:accept(client)
  client:nodelay(true)
  local pending = ""
  client:read_start(function(rerr, data)
    if rerr or not data then
      client:close()
      return
    end
    pending = pending .. data
    while true do  -- one response per request (a request ends with a blank line)
      local e = pending:find("\r\n\r\n", 1, true)
      if not e then break end
      pending = pending:sub(e + 4)
      client:write(RESPONSE)
    end
  end)
end))
uv.run()
