-- SPDX-License-Identifier: Apache-2.0
-- Async open, stat and read, line by line, on the callback API: lua5.4 read_lines.lua FILE
-- Prints the file's size, then each line numbered.
local luring = require "luring"

local path = assert(arg[1], "usage: read_lines.lua FILE")
local ring = luring.queue_init(8)

ring:statx(path, nil, function(_, res, st)
  assert(res == 0, path .. ": " .. luring.strerror(res))
  print(("%s: %d bytes"):format(path, st.size))
  ring:openat(path, "r", nil, function(_, fd)
    assert(fd >= 0, path .. ": " .. luring.strerror(fd))
    local offset, pending, n = 0, "", 0
    local function on_read(_, got, data)
      assert(got >= 0, luring.strerror(got))
      pending = pending .. data
      for line in pending:gmatch("([^\n]*)\n") do
        n = n + 1
        print(n, line)
      end
      pending = pending:match("[^\n]*$")
      if got == 0 then
        if pending ~= "" then print(n + 1, pending) end
        return ring:close_fd(fd)
      end
      offset = offset + got
      ring:read(fd, 65536, offset, on_read)
    end
    ring:read(fd, 65536, offset, on_read)
  end)
end)
ring:run()
