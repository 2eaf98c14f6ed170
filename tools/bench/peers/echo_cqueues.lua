-- SPDX-License-Identifier: Apache-2.0
-- The echo server of examples/echo_server.lua on cqueues: lua5.4 echo_cqueues.lua [PORT]
local cqueues = require "cqueues"
local socket = require "cqueues.socket"

local loop = cqueues.new()
local server = socket.listen("127.0.0.1", tonumber(arg[1]) or 0)
local _, _, port = server:localname()
print("listening on port " .. port)
io.stdout:flush()
loop:wrap(function()
  for client in server:clients() do
    loop:wrap(function()
      client:setmode("b", "b")
      pcall(function()  -- a client that resets the connection ends its task, not the loop
        for line in client:lines("*L") do client:write(line) end
      end)
      client:close()
    end)
  end
end)
assert(loop:loop())
