-- SPDX-License-Identifier: Apache-2.0
-- The two examples shipped with luring 0.1, written the way its users wrote them
-- (cqe_seen at the end of every callback, do_cqes after submit_and_wait), must run
-- unchanged and now get correct data.
local luring = require "luring"
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

-- example/example.lua: write a file, read it back.
case("file_example", function()
  local ring = luring.queue_init(4, 0)
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local wrote
  luring.write(ring, fd, "Hello World!", 0, function(cqe, res)
    wrote = res
    luring.cqe_seen(ring, cqe)
  end)
  luring.submit_and_wait(ring, 1)
  luring.do_cqes(ring)
  assert(wrote == 12)

  local result, data
  luring.read(ring, fd, 4096, 0, function(cqe, res, content)
    result, data = res, content
    luring.cqe_seen(ring, cqe)
  end)
  luring.submit_and_wait(ring, 1)
  luring.do_cqes(ring)
  -- luring 0.1 handed over all 4096 bytes of the buffer here.
  assert(result == 12 and data == "Hello World!", data)
end)

-- example/net.lua: a server accepts, receives a name and answers "Hello <name>!"; the
-- client sends its name and receives the answer. luaposix made the sockets there;
-- LuaSocket makes them here.
case("net_example", function()
  local socket = require "socket"
  local ring = luring.queue_init(64, 0)
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  local client = assert(socket.connect("127.0.0.1", port))
  local serverfd, clientfd = server:getfd(), client:getfd()

  local program_stop = false
  local log = {}
  luring.accept(ring, serverfd, 0, function(cqe, toclientfd)
    if toclientfd < 0 then
      log[#log + 1] = "server accept error: " .. luring.strerror(-toclientfd)
    else
      luring.recv(ring, toclientfd, 4096, 0, function(cqe, res, result)
        if res < 0 then
          log[#log + 1] = "server recv error: " .. luring.strerror(-res)
          program_stop = true
        else
          log[#log + 1] = "server recv: " .. result
          -- A temporary string with no other reference: luring 0.1 could send freed
          -- memory here.
          luring.send(ring, toclientfd, string.format("Hello %s!", result), 0)
        end
        luring.cqe_seen(ring, cqe)
      end)
    end
    luring.cqe_seen(ring, cqe)
  end)

  luring.send(ring, clientfd, "luring", 0, function(cqe, res)
    if res < 0 then
      log[#log + 1] = "client send error: " .. luring.strerror(-res)
      program_stop = true
    else
      luring.recv(ring, clientfd, 4096, 0, function(cqe, res, result)
        if res < 0 then
          log[#log + 1] = "client recv error: " .. luring.strerror(-res)
        else
          log[#log + 1] = "client recv: " .. result
        end
        program_stop = true
        luring.cqe_seen(ring, cqe)
      end)
    end
    luring.cqe_seen(ring, cqe)
  end)

  local deadline = os.time() + 5
  while not program_stop do
    luring.submit_and_wait(ring, 1)
    luring.do_cqes(ring)
    assert(os.time() <= deadline, "the network example did not finish")
  end
  local text = table.concat(log, "\n")
  assert(text:find("server recv: luring", 1, true), text)
  assert(text:find("client recv: Hello luring!", 1, true), text)
  luring.queue_exit(ring)
  client:close()
  server:close()
end)

helper.run_cases(cases)
