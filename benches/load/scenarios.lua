-- wrk script: POST a GraphQL body with a bearer token picked round-robin from a token file.
-- usage: wrk ... -s benches/load/scenarios.lua BASE_URL -- SCENARIO TOKENS_TXT [GRAPHQL_PATH]
--   SCENARIO: me | profile | recommendations | like
--   TOKENS_TXT: one "user_id access_token" per line (scripts/bench-load.sh makes it)
-- A response counts as an error when its status is not 200 or its body has "errors".

local QUERIES = {
  me = 'query Me { me { id email } }',
  profile = 'query Profile($u: UUID!) { profile(userId: $u) { id userId name age bio breed size activityLevel isComplete photos { id url thumbnailUrl order } prompts { id question answer order } } }',
  recommendations = 'query Recs { recommendations(first: 20) { edges { cursor node { profile { userId name photos { url } } score distance distanceUnit likedYou } } pageInfo { hasNextPage endCursor } } }',
  like = 'mutation Like($u: UUID!) { like(userId: $u) { isMatch match { id conversationId } } }',
}
local NEEDS_TARGET = { profile = true, like = true }

local threads = {}
local nthreads = 0

function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

function init(args)
  scenario = args[1]
  local path = args[2]
  gql_path = args[3] or "/graphql"
  query = QUERIES[scenario]
  if query == nil then error("unknown scenario " .. tostring(scenario)) end
  ids, toks = {}, {}
  for line in io.lines(path) do
    local id, tok = line:match("^(%S+)%s+(%S+)$")
    if id then ids[#ids + 1] = id; toks[#toks + 1] = tok end
  end
  n = #toks
  idx = (tid * 7919) % n        -- each thread starts elsewhere in the token list
  math.randomseed(os.time() * 1000 + tid)
  errors = 0
  first_error = ""
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  idx = idx % n + 1
  headers["Authorization"] = "Bearer " .. toks[idx]
  local body
  if NEEDS_TARGET[scenario] then
    local t = math.random(n)
    if t == idx then t = t % n + 1 end  -- never oneself
    body = '{"query":"' .. query .. '","variables":{"u":"' .. ids[t] .. '"}}'
  else
    body = '{"query":"' .. query .. '"}'
  end
  return wrk.format("POST", gql_path, headers, body)
end

function response(status, hdrs, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
    if first_error == "" then first_error = status .. " " .. string.sub(body, 1, 300) end
  end
end

function done(summary, latency, requests)
  local errs, fe, sc = 0, "", threads[1]:get("scenario")
  for _, t in ipairs(threads) do
    errs = errs + (t:get("errors") or 0)
    local f = t:get("first_error")
    if fe == "" and f and f ~= "" then fe = f end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT %s rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f requests=%d errors=%d socket_errors=%d\n",
    sc, summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, summary.requests, errs, e.connect + e.read + e.write + e.timeout))
  if fe ~= "" then io.write("FIRST_ERROR " .. fe .. "\n") end
end
