-- SPDX-License-Identifier: Apache-2.0
-- An HTTP/1.0 client on the callback API: lua5.4 http_get.lua HOST PORT [PATH]
-- HOST is an IPv4 literal. Prints the response (headers and body) to stdout.
local luring = require "luring"

local host, port, path = arg[1], tonumber(arg[2]), arg[3] or "/"
assert(host and port, "usage: http_get.lua HOST PORT [PATH]")
local ring = luring.queue_init(16)
local response = {}

ring:socket("inet", "stream", 0, function(_, fd)
  assert(fd >= 0, luring.strerror(fd))
  ring:connect(fd, host, port, function(_, res)
    assert(res == 0, "connect: " .. luring.strerror(res))
    local request = ("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n"):format(path, host)
    ring:send(fd, request, 0, function()
      local function on_recv(_, n, data)
        if n > 0 then
          response[#response + 1] = data
          return ring:recv(fd, 65536, 0, on_recv)
        end
        ring:close_fd(fd)  -- n == 0: the server closed the connection
      end
      ring:recv(fd, 65536, 0, on_recv)
    end)
  end)
end)

ring:run()
io.write(table.concat(response))
