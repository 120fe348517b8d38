-- One user's API budget, shared by every process that uses it (userplane_async.RedisBudget).
--
-- Every decision runs here, atomically, on the Redis server's clock (TIME, times SCALE so that
-- tests can speed time up); clients only sleep for the waits this script answers.
--
-- KEYS: 1 minute window, 2 day window (sorted sets: call id -> the time its slot frees),
--       3 queue (ticket -> ticket number), 4 ticket deadlines (ticket -> time it is given up),
--       5 state (hash: epoch, tickets, pause_until, strikes, floor, lowered_at),
--       6 processes (process id -> last seen).
-- ARGV: 1 operation, 2 SCALE, 3 this process's epoch guess, then the operation's own.
--
-- A call holds its slot from admission until a window after its answer, so no span of any
-- window, however the API counts it, holds more calls than the limit. Until the answer comes,
-- the slot is leased (admission + lease + window): a process that dies mid-call frees it late,
-- never early.
--
-- Beyond a burst of BURST_SHARE of the minute's limit, calls are paced at the per-minute rate
-- (a token bucket): then every waiting process is in the queue, and the queue is FIFO, so
-- equal processes get equal shares instead of whoever asks fastest taking the window.

local MINUTE, DAY = 60, 86400
local DECREASE, RECOVERY, LOWER_EVERY = 0.7, 0.1, MINUTE  -- lowered at most once a window
local BURST_SHARE = 0.1
local WMIN, WDAY, QUEUE, DEADLINES, STATE, PROCS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

local op, scale = ARGV[1], tonumber(ARGV[2])
-- Numbers go back and into the hash as text with every digit (tostring keeps only 14).
local function num(x) return string.format('%.17g', x) end
local t = redis.call('TIME')
local now = (tonumber(t[1]) + tonumber(t[2]) / 1e6) * scale

-- A state hash without an epoch is new, or Redis lost it: the caller learns which from the
-- epoch it gets back (its own guess means it started this state).
local epoch = redis.call('HGET', STATE, 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', STATE, 'epoch', epoch)
end

redis.call('ZREMRANGEBYSCORE', WMIN, '-inf', num(now))
redis.call('ZREMRANGEBYSCORE', WDAY, '-inf', num(now))
local dead = redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', num(now))
for _, ticket in ipairs(dead) do
  redis.call('ZREM', QUEUE, ticket)
  redis.call('ZREM', DEADLINES, ticket)
end
-- Nothing here outlives a day of disuse.
local idle = math.ceil((DAY + 3600) / scale)
for _, key in ipairs(KEYS) do
  redis.call('EXPIRE', key, idle)
end

local function state_number(field)
  return tonumber(redis.call('HGET', STATE, field) or '0')
end

-- The per-minute limit in force: lowered after 429s the budget had room for, then climbing
-- back by RECOVERY of the limit per minute.
local function rate(per_minute)
  if per_minute <= 0 then return 0 end
  local floor = redis.call('HGET', STATE, 'floor')
  if not floor then return per_minute end
  local r = tonumber(floor) + per_minute * RECOVERY * (now - state_number('lowered_at')) / MINUTE
  if r >= per_minute then
    redis.call('HDEL', STATE, 'floor')
    return per_minute
  end
  return r
end

-- Seconds until `ahead + 1` slots are free in a window (0: now). A slot still leased to a
-- call in flight frees when that call is answered, which no one can foresee: poll then.
local function wait_for(window, seconds, limit, ahead, poll)
  if limit <= 0 then return 0 end
  local short = redis.call('ZCARD', window) + ahead + 1 - limit
  if short <= 0 then return 0 end
  local entry = redis.call('ZRANGE', window, short - 1, short - 1, 'WITHSCORES')
  local frees = tonumber(entry[2])
  if frees > now + seconds then return poll end
  return frees - now
end

-- Tokens for calls now (refilled at the per-minute rate, up to the burst), and the seconds
-- until `ahead + 1` of them are there.
local function pace(per_minute, ahead)
  if per_minute <= 0 then return 0, 0 end
  local capacity = math.max(1, math.ceil(per_minute * BURST_SHARE))
  local tokens = tonumber(redis.call('HGET', STATE, 'tokens') or capacity)
  local at = tonumber(redis.call('HGET', STATE, 'tokens_at') or now)
  tokens = math.min(capacity, tokens + math.max(now - at, 0) * per_minute / MINUTE)
  redis.call('HSET', STATE, 'tokens', num(tokens), 'tokens_at', num(now))
  if tokens >= ahead + 1 then return tokens, 0 end
  return tokens, (ahead + 1 - tokens) * MINUTE / per_minute
end

local function processes()
  redis.call('ZREMRANGEBYSCORE', PROCS, '-inf', num(now - MINUTE))
  return redis.call('ZCARD', PROCS)
end

if op == 'acquire' then
  -- ARGV: 4 process id, 5 ticket ('' for a new one), 6 call id, 7 per minute, 8 per day
  -- (0: no limit), 9 lease, 10 poll, 11 grace.
  local proc, ticket, call = ARGV[4], ARGV[5], ARGV[6]
  local per_minute, per_day = tonumber(ARGV[7]), tonumber(ARGV[8])
  local lease, poll, grace = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
  redis.call('ZADD', PROCS, num(now), proc)
  if ticket == '' then
    ticket = tostring(redis.call('HINCRBY', STATE, 'tickets', 1))  -- an integer
  end
  -- FIFO: a ticket is let through only with room for every live ticket before it.
  redis.call('ZADD', QUEUE, tonumber(ticket), ticket)
  local ahead = redis.call('ZRANK', QUEUE, ticket)
  local paused = math.max(state_number('pause_until') - now, 0)
  local per_minute_now = per_minute
  if per_minute > 0 then per_minute_now = math.max(1, math.floor(rate(per_minute))) end
  local tokens, paced = pace(per_minute_now, ahead)
  local budget = math.max(wait_for(WMIN, MINUTE, per_minute_now, ahead, poll),
    wait_for(WDAY, DAY, per_day, ahead, poll), paced)
  local wait = math.max(paused, budget)
  local admitted = 0
  if wait <= 0 then
    redis.call('ZADD', WMIN, num(now + lease + MINUTE), call)
    redis.call('ZADD', WDAY, num(now + lease + DAY), call)
    redis.call('ZREM', QUEUE, ticket)
    redis.call('ZREM', DEADLINES, ticket)
    if per_minute > 0 then redis.call('HSET', STATE, 'tokens', num(tokens - 1)) end
    admitted = 1
  else
    redis.call('ZADD', DEADLINES, num(now + wait + grace), ticket)
  end
  -- 'budget' when the windows keep the call waiting (the longer wait), else 'pause'
  local why = 'pause'
  if budget >= paused then why = 'budget' end
  return {admitted, ticket, num(wait), why, processes(), num(now), epoch}

elseif op == 'release' then
  -- ARGV: 4 call id, 5 '1' if the answer was not a 429. Added even if Redis forgot the call.
  redis.call('ZADD', WMIN, num(now + MINUTE), ARGV[4])
  redis.call('ZADD', WDAY, num(now + DAY), ARGV[4])
  if ARGV[5] == '1' then redis.call('HDEL', STATE, 'strikes') end
  return {num(now), epoch}

elseif op == 'cancel' then
  -- ARGV: 4 ticket: a waiter gave up (cancelled, or the wait was too long).
  redis.call('ZREM', QUEUE, ARGV[4])
  redis.call('ZREM', DEADLINES, ARGV[4])
  return {num(now), epoch}

elseif op == 'throttle' then
  -- A 429. ARGV: 4 Retry-After in seconds (-1: none), 5 backoff initial, 6 backoff cap,
  -- 7 backoff base, 8 jitter in [0, 1), 9 wait scale, 10 per minute (0: no limit).
  local retry_after = tonumber(ARGV[4])
  local strikes = redis.call('HINCRBY', STATE, 'strikes', 1)
  local pause
  if retry_after >= 0 then
    pause = retry_after * tonumber(ARGV[9])
  else
    local grown = tonumber(ARGV[5]) * tonumber(ARGV[7]) ^ (strikes - 1)
    pause = math.min(tonumber(ARGV[6]), grown) * tonumber(ARGV[8]) * tonumber(ARGV[9])
  end
  local until_ = math.max(state_number('pause_until'), now + pause)
  redis.call('HSET', STATE, 'pause_until', num(until_))
  local per_minute = tonumber(ARGV[10])
  local lowered = 0
  if per_minute > 0 and redis.call('ZCARD', WMIN) <= per_minute
      and now - state_number('lowered_at') >= LOWER_EVERY then
    redis.call('HSET', STATE, 'floor', num(math.max(1, rate(per_minute) * DECREASE)),
      'lowered_at', num(now))
    lowered = 1
  end
  return {num(until_ - now), num(rate(per_minute)), lowered, num(now), epoch}

elseif op == 'replay' then
  -- Calls Redis does not know of (made while it was out of reach, or before it lost its
  -- state). ARGV: 4.. triples of call id, minute-window end, day-window end (server time).
  for i = 4, #ARGV, 3 do
    local minute_end, day_end = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    if minute_end > now then redis.call('ZADD', WMIN, 'NX', num(minute_end), ARGV[i]) end
    if day_end > now then redis.call('ZADD', WDAY, 'NX', num(day_end), ARGV[i]) end
  end
  return {num(now), epoch}

elseif op == 'status' then
  -- ARGV: 4 per minute (0: no limit).
  local per_minute = tonumber(ARGV[4])
  return {redis.call('ZCARD', WMIN), redis.call('ZCARD', WDAY),
    num(math.max(state_number('pause_until') - now, 0)), num(rate(per_minute)),
    processes(), num(now), epoch}
end
return redis.error_reply('unknown budget operation ' .. tostring(op))
