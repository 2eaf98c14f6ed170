-- SPDX-License-Identifier: Apache-2.0
-- "Wait at most 1 s" on the callback API: lua5.4 deadline.lua
-- Reads a line from stdin, giving up after one second: the read and a link_timeout go
-- to the kernel as one chain, so the kernel itself cancels the read at the deadline.
local luring = require "luring"

local ring = luring.queue_init(8)
ring:link{
  { "read", 0, 4096, -1, function(_, res, data)
      if res >= 0 then
        io.write("got: ", data)
      elseif res == -luring.errno.ECANCELED then
        print("no input within 1 s")
      else
        print("read failed: " .. luring.strerror(res))
      end
    end },
  { "link_timeout", 1.0 },
}
ring:run()
