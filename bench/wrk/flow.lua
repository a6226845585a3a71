-- One wrk script for every workload of bench/run.py; the workload comes from the environment.
--
-- BENCH_MODE   get      GET BENCH_PATH (BENCH_HEADER: one extra "Name: value" header)
--              post     POST BENCH_BODY (form) to BENCH_PATH with BENCH_AUTH (Basic)
--              code     GET BENCH_AUTHORIZE with BENCH_COOKIE; each code from the redirect
--                       is POSTed to BENCH_PATH (the token endpoint) with BENCH_VERIFIER
--              refresh  POST grant_type=refresh_token with tokens from BENCH_TOKENS (one per
--                       line, split among threads); each answer's new refresh token is reused
-- `done` prints one line "BENCH_RESULT {json}" with the successes each mode counts.
--
-- BENCH_SAMPLES  a path prefix: each thread writes some of its counted answers to
--                PREFIX-<thread>.txt for bench/verify.py to check after the run: the first
--                SAMPLE_FIRST, then every SAMPLE_EVERY-th (a counter and a modulo per
--                answer, a write only when sampled). Each record is a line
--                "<kind> <status> <seen> <length>" and <length> bytes of body, then "\n".
--                kind "answer": a counted answer; in refresh mode <seen> is 1 when its new
--                refresh token is one this thread already presented (rotation broken).
--                kind "presented": the refresh token of the thread's second request(),
--                sent at once and long answered when wrk stops (the verifier replays it
--                after the run). Not the first: wrk calls request() once on thread 0 to
--                check the script (script_verify_request) and never sends that request.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local mode, path, body, auth
local queue = {}
ok = 0
failed = 0

local SAMPLE_FIRST, SAMPLE_EVERY = 3, 500
local samples       -- the thread's sample file, or nil when BENCH_SAMPLES is unset
local answers = 0   -- counted answers so far, for sampling
-- refresh: every token this thread presented (a set), and how many requests it built.
-- wrk does not tell response() which request it answers, so a sampled answer is checked
-- against all of them: its new token must be none of those presented before.
local presented = {}
local built = 0

function init(args)
  mode = os.getenv("BENCH_MODE")
  path = os.getenv("BENCH_PATH")
  body = os.getenv("BENCH_BODY")
  auth = os.getenv("BENCH_AUTH")
  local header = os.getenv("BENCH_HEADER")
  if header then
    local name, value = header:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
  if auth then
    wrk.headers["Authorization"] = "Basic " .. auth
  end
  if mode == "post" or mode == "code" or mode == "refresh" then
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  local prefix = os.getenv("BENCH_SAMPLES")
  if prefix then
    samples = assert(io.open(prefix .. "-" .. index .. ".txt", "w"))
  end
  if mode == "refresh" then
    local nthreads = tonumber(os.getenv("BENCH_THREADS"))
    local n = 0
    for line in io.lines(os.getenv("BENCH_TOKENS")) do
      if n % nthreads == index then
        table.insert(queue, line)
      end
      n = n + 1
    end
  end
end

local function token_request(form)
  return wrk.format("POST", path, nil, form)
end

local function write_sample(kind, status, seen, text)
  samples:write(kind, " ", status, " ", seen and 1 or 0, " ", #text, "\n", text, "\n")
  samples:flush()
end

function request()
  if mode == "get" then
    return wrk.format("GET", path)
  elseif mode == "post" then
    return token_request(body)
  elseif mode == "code" then
    local code = table.remove(queue)
    if code then
      return token_request("grant_type=authorization_code&code=" .. code
        .. "&redirect_uri=" .. os.getenv("BENCH_REDIRECT_URI")
        .. "&code_verifier=" .. os.getenv("BENCH_VERIFIER"))
    end
    -- Headers given to wrk.format replace wrk.headers: a browser's GET, cookies only.
    return wrk.format("GET", os.getenv("BENCH_AUTHORIZE"), { ["Cookie"] = os.getenv("BENCH_COOKIE") })
  else -- refresh
    local token = table.remove(queue, 1) or "exhausted"
    presented[token] = true
    built = built + 1
    if samples and built == 2 then
      write_sample("presented", 0, false, token)
    end
    return token_request("grant_type=refresh_token&refresh_token=" .. token)
  end
end

function response(status, headers, response_body)
  if mode == "code" and (status == 302 or status == 303) then
    local code = (headers["Location"] or headers["location"] or ""):match("[?&]code=([^&]+)")
    if code then
      table.insert(queue, code)
      return
    end
  end
  -- Counted from here on: in code mode the token request's answer (one whole exchange,
  -- authorize then token) or an authorize that gave no code.
  local success = status == 200
  local seen = false
  if mode == "refresh" then
    local token = success and response_body:match('"refresh_token"%s*:%s*"([^"]+)"')
    success = token and true or false
    if token then
      seen = presented[token] or false
      table.insert(queue, token)
    end
  end
  if success then
    ok = ok + 1
  else
    failed = failed + 1
  end
  answers = answers + 1
  if samples and (answers <= SAMPLE_FIRST or answers % SAMPLE_EVERY == 0) then
    write_sample("answer", status, seen, response_body)
  end
end

function done(summary, latency, requests)
  local total_ok, total_failed = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_failed = total_failed + thread:get("failed")
  end
  io.write(string.format(
    'BENCH_RESULT {"ok": %d, "failed": %d, "requests": %d, "duration_us": %d, '
      .. '"socket_errors": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    total_ok, total_failed, summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
