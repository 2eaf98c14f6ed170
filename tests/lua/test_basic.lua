-- SPDX-License-Identifier: Apache-2.0
-- The ring object: creation, method form, __tostring, __close, queue_exit, constants.
local luring = require "luring"
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

-- queue_init: a ring; bad sizes are argument errors before any syscall.
case("queue_init", function()
  local ring = luring.queue_init(4, 0)
  assert(tostring(ring):find("^luring.Ring %(sq 4, cq 8, 0 in flight%)"))
  luring.queue_exit(ring)
  assert(tostring(ring):find("^luring.Ring %(closed%)"))

  helper.raises("bad argument #1 to", luring.queue_init, 0, 0)
  helper.raises("bad argument #1 to", luring.queue_init, -1, 0)
  helper.raises("number has no integer representation", luring.queue_init, 1.5, 0)
  helper.raises("bad argument #1 to", luring.queue_init, 2^32, 0)
  helper.raises("bad argument #1 to", luring.queue_init, 2^40, 0)
  helper.raises("bad argument #1 to", luring.queue_init, 65536, 0)
  helper.raises("bad argument #2 to", luring.queue_init, 4, -1)
  helper.raises("bad argument #1 to", luring.queue_init, "x", 0)
  -- An unknown flag: the kernel's reason, cleanly.
  helper.raises("could not initialise queue", luring.queue_init, 8, 0x80000000)
  -- flags default to 0; an options table works too.
  luring.queue_exit(luring.queue_init(2))
  local r = luring.queue_init(4, { cq_entries = 64 })
  assert(tostring(r):find("cq 64"), tostring(r))
  r:close()
  helper.raises("field 'cq_entries'", luring.queue_init, 4, { cq_entries = -5 })
end)

-- The method form is the same function as the module form.
case("method_form", function()
  local ring = luring.queue_init(8, 0)
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local wrote, got
  assert(ring:write(fd, "method form", 0, function(cqe, res) wrote = res end))
  assert(ring:submit_and_wait(1) == 1)
  assert(ring:do_cqes() == 1)
  assert(wrote == 11)
  assert(ring:read(fd, 64, 7, function(cqe, res, data) got = data end))
  assert(luring.submit_and_wait(ring, 1) == 1)
  assert(luring.do_cqes(ring) == 1)
  assert(got == "form", got)
  ring:close()
  ring:close()  -- idempotent
  ring:queue_exit()
  helper.raises("closed ring", ring.submit, ring)
  helper.raises("closed ring", luring.read, ring, fd, 1, 0)
  helper.raises("closed ring", luring.do_cqes, ring)
end)

-- <close> releases the ring at the end of the block.
case("close_attribute", function()
  local escaped
  do
    local ring <close> = luring.queue_init(4, 0)
    escaped = ring
    assert(ring:submit() == 0)
  end
  assert(tostring(escaped):find("closed"))
end)

-- The metatable is protected; the wrong userdata is refused.
case("metatable", function()
  local ring = luring.queue_init(4, 0)
  assert(getmetatable(ring) == "luring.Ring is not accessible")
  helper.raises("luring.Ring expected", luring.submit, io.stdout)
  helper.raises("luring.Ring expected", luring.submit, nil)
  ring:close()
end)

-- Constants.
case("constants", function()
  assert(luring.setup.SQPOLL == 2)
  assert(luring.setup.DEFER_TASKRUN == 1 << 13)
  assert(luring.errno.EAGAIN == 11 and luring.errno.ECANCELED == 125)
  assert(luring.msg.NOSIGNAL > 0 and luring.sock.CLOEXEC > 0)
end)

-- strerror takes either sign.
case("strerror", function()
  assert(luring.strerror(2) == luring.strerror(-2))
  assert(luring.strerror(-luring.errno.ENOENT):find("No such file"))
end)

helper.run_cases(cases)
