-- SPDX-License-Identifier: Apache-2.0
-- examples/http_hello.lua on cqueues: an HTTP/1.1 keep-alive server answering every
-- request with "Hello, World!". lua5.4 http_hello_cqueues.lua PORT
local cqueues = require "cqueues"
local socket = require "cqueues.socket"

local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                 .. "Hello, World!"
local loop = cqueues.new()
local server = socket.listen("127.0.0.1", tonumber(arg[#arg]) or 8080)
loop:wrap(function()
  for client in server:clients() do
    loop:wrap(function()
      client:setmode("t", "bf")  -- CRLF read as LF; output fully buffered, flushed per response
      pcall(function()  -- a client that resets the connection ends its task, not the loop
        while true do
          local line = client:read("*l")
          if not line then break end
          repeat local header = client:read("*l") until header == "" or header == nil
          client:write(RESPONSE)
          client:flush()
        end
      end)
      client:close()
    end)
  end
end)
assert(loop:loop())
