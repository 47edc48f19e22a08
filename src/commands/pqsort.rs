//! Redis's partial quicksort (`pqsort.c`, a Bentley-McIlroy quicksort that only sorts the
//! ranks a reply needs). GEOSEARCH with COUNT and SORT with LIMIT use it, and which of
//! several equal elements make it into the reply depends on this exact algorithm.

/// Redis's `pqsort`: a Bentley-McIlroy quicksort that only recurses into partitions
/// overlapping ranks `lrange..=rrange`. Which of several equal elements land in the range,
/// and in which order, depends on this exact algorithm, so it is reproduced step by step.
pub fn partial_sort<T>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> i32, lrange: usize, rrange: usize) {
    let n = v.len();
    pqsort_part(v, 0, n, cmp, lrange, rrange);
}

fn pqsort_part<T>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: &dyn Fn(&T, &T) -> i32,
    lrange: usize,
    rrange: usize,
) {
    let outside = |start: usize, len: usize| {
        (lrange < start && rrange < start) || (lrange >= start + len && rrange >= start + len)
    };
    let med3 = |v: &[T], x: usize, y: usize, z: usize| {
        if cmp(&v[x], &v[y]) < 0 {
            if cmp(&v[y], &v[z]) < 0 {
                y
            } else if cmp(&v[x], &v[z]) < 0 {
                z
            } else {
                x
            }
        } else if cmp(&v[y], &v[z]) > 0 {
            y
        } else if cmp(&v[x], &v[z]) < 0 {
            x
        } else {
            z
        }
    };
    let vecswap = |v: &mut [T], x: usize, y: usize, k: usize| {
        for i in 0..k {
            v.swap(x + i, y + i);
        }
    };
    loop {
        if n < 7 {
            for pm in a + 1..a + n {
                let mut pl = pm;
                while pl > a && cmp(&v[pl - 1], &v[pl]) > 0 {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d);
                pm = med3(v, pm - d, pm, pm + d);
                pn = med3(v, pn - 2 * d, pn - d, pn);
            }
            pm = med3(v, pl, pm, pn);
        }
        v.swap(a, pm);
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let c = cmp(&v[pb], &v[a]);
                if c > 0 {
                    break;
                }
                if c == 0 {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let c = cmp(&v[pc], &v[a]);
                if c < 0 {
                    break;
                }
                if c == 0 {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        vecswap(v, a, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let m = pb - pa;
        if m > 1 && !outside(a, m) {
            pqsort_part(v, a, m, cmp, lrange, rrange);
        }
        let m = pd - pc;
        if m > 1 && !outside(pn - m, m) {
            a = pn - m;
            n = m;
            continue;
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_sort_orders_the_requested_ranks() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in [1usize, 5, 7, 8, 20, 41, 100, 300] {
            for k in [1usize, 2, 7, 40, 299] {
                if k > len {
                    continue;
                }
                let mut v: Vec<i32> = (0..len)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((seed >> 33) % 17) as i32
                    })
                    .collect();
                let mut expect = v.clone();
                expect.sort();
                let cmp = |a: &i32, b: &i32| (*a - *b).signum();
                partial_sort(&mut v, &cmp, 0, k - 1);
                assert_eq!(v[..k], expect[..k], "len {len} k {k}");
            }
        }
    }
}
