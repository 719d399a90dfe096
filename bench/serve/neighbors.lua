-- wrk script: nearest-neighbour queries to `firth serve`, a different word each request,
-- drawn at random from the file named by $WORDS (one word per line, all in the vocabulary),
-- against the vector file with id $MODEL.
local words = {}
for line in io.lines(os.getenv("WORDS")) do
  words[#words + 1] = line
end
local model = os.getenv("MODEL")
local counter = 0

function init(args)
  -- Each wrk thread draws its own sequence.
  counter = counter + 1
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

request = function()
  local w = words[math.random(#words)]
  local body = '{"model":' .. quote(model) .. ',"word":' .. quote(w) .. ',"k":10}'
  return wrk.format("POST", "/api/vectors/neighbors", { ["Content-Type"] = "application/json" }, body)
end
