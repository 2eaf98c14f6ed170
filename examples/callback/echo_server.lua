-- SPDX-License-Identifier: Apache-2.0
-- A TCP echo server on the callback API: lua5.4 echo_server.lua [PORT]
-- Prints the port it listens on, then echoes every connection until killed.
local luring = require "luring"

local ring = luring.queue_init(256)
local port = tonumber(arg[1]) or 0

local function on_connection(fd)
  local function on_recv(_, res, data)
    if res <= 0 then
      ring:close_fd(fd)  -- end of stream or error: close the connection
      return
    end
    ring:send(fd, data, luring.msg.NOSIGNAL, function(_, sent)
      if sent < 0 then return ring:close_fd(fd) end
      ring:recv(fd, 4096, 0, on_recv)
    end)
  end
  ring:recv(fd, 4096, 0, on_recv)
end

ring:socket("inet", "stream", 0, function(_, server)
  assert(server >= 0, luring.strerror(server))
  luring.setsockopt(server, "reuseaddr", true)
  ring:bind(server, "127.0.0.1", port, function(_, res)
    assert(res == 0, luring.strerror(res))
    ring:listen(server, 128, function()
      print("listening on port " .. luring.getsockname(server).port)
      io.stdout:flush()
      -- One accept at a time, queued again from its callback (multishot_accept does it
      -- in one request, on 5.19 and later).
      local function on_accept(_, fd)
        if fd >= 0 then on_connection(fd) end
        ring:accept(server, 0, on_accept)
      end
      ring:accept(server, 0, on_accept)
    end)
  end)
end)

ring:run()
