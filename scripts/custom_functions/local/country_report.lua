-- local/country_report: one line per country, for a note.
-- params: {country = "...", ips = "8.8.8.8, 1.1.1.1"}
return function(params)
  local country = params.country or "unknown"
  return {line = ("%s: %s"):format(country, params.ips or ""), country = country}
end
