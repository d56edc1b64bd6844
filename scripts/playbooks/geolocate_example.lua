-- geolocate_example.lua: geolocate every IP address in a container's
-- artifacts, report the country found for each one, then list the countries.

local IP_FIELDS = {"sourceAddress", "destinationAddress"}

function on_start(container)
  phantom.debug("geolocating the IP addresses of container " .. container.id)
  geolocate_ip_1{container = container}
end

function geolocate_ip_1(kw)
  local parameters = {}
  for _, artifact in ipairs(kw.container.artifacts) do
    for _, field in ipairs(IP_FIELDS) do
      local ip = artifact.cef and artifact.cef[field]
      if ip then
        parameters[#parameters + 1] = {ip = ip, context = {artifact_id = artifact.id}}
      end
    end
  end
  phantom.act("geolocate ip", {parameters = parameters, assets = {"geoip"},
                               callback = geolocate_ip_1_callback, name = "geolocate_ip_1"})
end

function geolocate_ip_1_callback(kw)
  for _, app_run in ipairs(kw.results) do
    for _, result in ipairs(app_run.action_results) do
      local ip = result.parameter.ip
      if result.status == "success" then
        phantom.debug(ip .. ": " .. result.summary.country)
      else
        phantom.debug(ip .. ": no country (" .. result.message .. ")")
      end
    end
  end
  list_countries{container = kw.container, results = kw.results}
end

function list_countries(kw)
  local seen, countries = {}, {}
  for _, item in ipairs(phantom.parse_success(kw.results)) do
    if not seen[item.country_name] then
      seen[item.country_name] = true
      countries[#countries + 1] = item.country_name
    end
  end
  table.sort(countries)
  phantom.debug("countries: " .. table.concat(countries, ", "))
end

function on_finish(container, summary)
  local s = phantom.get_summary()
  phantom.debug(("finished: %d action run(s)"):format(#s.result))
end
