-- SPDX-License-Identifier: Apache-2.0
-- The echo server of examples/echo_server.lua on luv: lua5.4 echo_luv.lua [PORT]
local uv = require "luv"

local server = uv.new_tcp()
assert(server:bind("127.0.0.1", tonumber(arg[1]) or 0))
assert(server:listen(128, function(err)
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
    while true do
      local line, rest = pending:match("^([^\n]*\n)(.*)$")
      if not line then break end
      pending = rest
      client:write(line)
    end
  end)
end))
print("listening on port " .. server:getsockname().port)
io.stdout:flush()
uv.run()
