-- wrk script: GET /scim/v2/Users?startIndex=K&count=100 at random K among
-- $USERS users (as muster-loadbench's phase 5), with the bearer token in
-- $TOKEN.
local users = tonumber(os.getenv("USERS"))
local token = os.getenv("TOKEN")
local last_start = math.max(users - 99, 1)

setup = function(thread)
  thread:set("seed", math.random(1, 1000000))
end

init = function()
  math.randomseed(seed)
end

request = function()
  return wrk.format("GET", "/scim/v2/Users?startIndex=" .. math.random(1, last_start) .. "&count=100", {
    ["Authorization"] = "Bearer " .. token,
    ["Accept"] = "application/scim+json",
  })
end

done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n",
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
