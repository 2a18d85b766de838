SELECT count(*) FILTER (WHERE lease_until IS NULL OR lease_until <= now()),
       count(*) FILTER (WHERE lease_until > now()),
       (SELECT count(*) FROM {dead_letters})
FROM {deliveries}
