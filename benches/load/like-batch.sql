-- PostgreSQL alone doing likes in batches (group commit), to measure what batching would gain:
-- each call makes :n likes of random pairs of the people in bench_people in one transaction,
-- through the server's own pupmatch_like, taking the pairs' locks in key order (so concurrent
-- batches cannot deadlock). Used by scripts/bench-load.sh with benches/load/like-batch.pgbench;
-- it lives only in the benchmark's database.
CREATE FUNCTION bench_like_batch(people int, n int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    k int := 0;
BEGIN
    FOR r IN
        SELECT pa.user_id AS ua, pb.user_id AS ub,
               (LEAST(p.a, p.b)::bigint << 32) | GREATEST(p.a, p.b) AS key
          FROM (SELECT a, 1 + (a - 1 + (1 + floor(random() * (people - 1)))::int) % people AS b
                  FROM (SELECT 1 + floor(random() * people)::int AS a
                          FROM generate_series(1, n)) s) p
          JOIN bench_people pa ON pa.n = p.a
          JOIN bench_people pb ON pb.n = p.b
         ORDER BY 3
    LOOP
        PERFORM * FROM pupmatch_like(r.ua, r.ub, r.key, now(), gen_random_uuid(),
            gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'LIKE', 'Someone likes you',
            'A dog nearby liked your profile', NULL, true);
        k := k + 1;
    END LOOP;
    RETURN k;
END
$$;
