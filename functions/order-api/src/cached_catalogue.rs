//! Prices remembered by a warm API instance for a few seconds, so that most orders are priced
//! without a catalogue read. A remembered price can be up to `max_age` old; the API therefore
//! refuses an order only on the catalogue's current prices (see `OrderApi::price`), and the cost
//! of the cache is that, for up to `max_age` after a price change, an order may still be priced
//! at the previous price.
//!
//! Requests that miss together share one read: when the prices expire under a burst, an instance
//! serving requests concurrently (the local runtime, Lambda managed instances) makes one
//! catalogue read, not one per request.
//!
//! A map and a time per sku: a caching crate (moka and the like) would bring its own
//! housekeeping threads and dependencies for what these few lines do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use catalogue::{Catalogue, CatalogueFuture, Price, Prices};

/// Most skus remembered; past it, the expired ones are dropped (all of them, if none is).
const MOST_REMEMBERED: usize = 10_000;

/// A [`Catalogue`] that remembers each price it reads for `max_age`.
pub struct CachedCatalogue<C> {
    inner: C,
    max_age: Duration,
    remembered: Mutex<HashMap<String, (Price, Instant)>>,
    /// Held by the one request reading missing prices; the others wait for it and look again.
    reading: tokio::sync::Mutex<()>,
}

impl<C: Catalogue> CachedCatalogue<C> {
    pub fn new(inner: C, max_age: Duration) -> Self {
        Self {
            inner,
            max_age,
            remembered: Mutex::new(HashMap::new()),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// The remembered, unexpired prices of `skus`.
    fn recall(&self, skus: &BTreeSet<String>) -> BTreeMap<String, Price> {
        let remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        skus.iter()
            .filter_map(|sku| {
                let (price, read_at) = remembered.get(sku)?;
                (read_at.elapsed() < self.max_age).then(|| (sku.clone(), price.clone()))
            })
            .collect()
    }

    /// Remembers what a read of `skus` found, and forgets the skus it did not find.
    fn remember(&self, skus: &BTreeSet<String>, found: &BTreeMap<String, Price>, read_at: Instant) {
        let mut remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        for sku in skus {
            match found.get(sku) {
                Some(price) => remembered.insert(sku.clone(), (price.clone(), read_at)),
                None => remembered.remove(sku),
            };
        }
        if remembered.len() > MOST_REMEMBERED {
            remembered.retain(|_, (_, at)| at.elapsed() < self.max_age);
            if remembered.len() > MOST_REMEMBERED {
                remembered.clear();
            }
        }
    }

    async fn read(&self, skus: &BTreeSet<String>) -> Result<Prices, String> {
        let read_at = Instant::now();
        let current = self.inner.current_prices(skus).await?;
        self.remember(skus, &current.by_sku, read_at);
        Ok(current)
    }

    async fn prices_of(&self, skus: &BTreeSet<String>) -> Result<Prices, String> {
        let mut by_sku = self.recall(skus);
        if by_sku.len() == skus.len() {
            let remembered = !by_sku.is_empty();
            return Ok(Prices { by_sku, remembered });
        }
        // One read at a time: a request that finds one in flight waits for it and reads only
        // what it did not bring (so a failed read is retried once per waiter, not in a queue).
        let _reading = match self.reading.try_lock() {
            Ok(reading) => Some(reading),
            Err(_) => {
                drop(self.reading.lock().await);
                by_sku = self.recall(skus);
                None
            }
        };
        let remembered = !by_sku.is_empty();
        let missing: BTreeSet<String> = skus
            .iter()
            .filter(|sku| !by_sku.contains_key(*sku))
            .cloned()
            .collect();
        if !missing.is_empty() {
            by_sku.extend(self.read(&missing).await?.by_sku);
        }
        Ok(Prices { by_sku, remembered })
    }
}

impl<C: Catalogue> Catalogue for CachedCatalogue<C> {
    fn prices<'a>(&'a self, skus: &'a BTreeSet<String>) -> CatalogueFuture<'a> {
        Box::pin(self.prices_of(skus))
    }

    fn current_prices<'a>(&'a self, skus: &'a BTreeSet<String>) -> CatalogueFuture<'a> {
        Box::pin(self.read(skus))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::Changing;

    /// Long enough that the steps of a test run well within it, short enough to wait out.
    const MAX_AGE: Duration = Duration::from_secs(1);

    fn skus(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn price_of(prices: &Prices, sku: &str) -> Option<i64> {
        prices.by_sku.get(sku).map(|p| p.unit_price_minor)
    }

    #[tokio::test]
    async fn a_price_is_read_once_per_max_age_and_only_the_missing_skus_are_read() {
        let catalogue = Changing::default();
        catalogue.set(&[("A", 100, "EUR"), ("B", 200, "EUR")]);
        let cached = CachedCatalogue::new(catalogue.clone(), MAX_AGE);

        let first = cached.prices(&skus(&["A"])).await.unwrap();
        assert_eq!(
            (price_of(&first, "A"), first.remembered),
            (Some(100), false)
        );
        let both = cached.prices(&skus(&["A", "B"])).await.unwrap();
        assert_eq!((price_of(&both, "B"), both.remembered), (Some(200), true));
        assert_eq!(catalogue.asked(), 2, "A once, then only B");

        // Within the max age a changed price is not seen, and the answer says it is remembered.
        catalogue.set(&[("A", 150, "EUR"), ("B", 200, "EUR")]);
        let stale = cached.prices(&skus(&["A"])).await.unwrap();
        assert_eq!((price_of(&stale, "A"), stale.remembered), (Some(100), true));
        assert_eq!(catalogue.asked(), 2);

        // Past it, the price is read again.
        tokio::time::sleep(MAX_AGE).await;
        let fresh = cached.prices(&skus(&["A"])).await.unwrap();
        assert_eq!(
            (price_of(&fresh, "A"), fresh.remembered),
            (Some(150), false)
        );
        assert_eq!(catalogue.asked(), 3);
    }

    #[tokio::test]
    async fn current_prices_read_past_the_cache_and_refresh_it() {
        let catalogue = Changing::default();
        catalogue.set(&[("A", 100, "EUR"), ("B", 200, "EUR")]);
        let cached = CachedCatalogue::new(catalogue.clone(), Duration::from_secs(10));
        cached.prices(&skus(&["A", "B"])).await.unwrap();

        // A changes and B leaves the catalogue.
        catalogue.set(&[("A", 150, "EUR")]);
        let current = cached.current_prices(&skus(&["A", "B"])).await.unwrap();
        assert_eq!(price_of(&current, "A"), Some(150));
        assert_eq!(price_of(&current, "B"), None);
        assert!(!current.remembered);

        let asked = catalogue.asked();
        let after = cached.prices(&skus(&["A", "B"])).await.unwrap();
        assert_eq!(
            price_of(&after, "A"),
            Some(150),
            "the refreshed price is remembered"
        );
        assert_eq!(
            price_of(&after, "B"),
            None,
            "a sku the catalogue dropped is forgotten"
        );
        assert_eq!(
            catalogue.asked(),
            asked + 1,
            "only the unknown sku is asked again"
        );
    }

    #[tokio::test]
    async fn requests_that_miss_together_share_one_read() {
        let catalogue = Changing::default();
        catalogue.set(&[("A", 100, "EUR"), ("B", 200, "EUR")]);
        catalogue.set_delay(Duration::from_millis(50));
        let cached = CachedCatalogue::new(catalogue.clone(), Duration::from_secs(10));

        let (a, ab) = (skus(&["A"]), skus(&["A", "B"]));
        let (herd, wider) = tokio::join!(
            futures::future::join_all((0..8).map(|_| cached.prices(&a))),
            async {
                // Arrives while the first read is in flight and needs one sku more.
                tokio::time::sleep(Duration::from_millis(10)).await;
                cached.prices(&ab).await
            }
        );
        for prices in herd {
            assert_eq!(price_of(&prices.unwrap(), "A"), Some(100));
        }
        let wider = wider.unwrap();
        assert_eq!(
            (price_of(&wider, "A"), price_of(&wider, "B")),
            (Some(100), Some(200))
        );
        assert_eq!(catalogue.asked(), 2, "A read once for all, then B alone");
    }

    #[tokio::test]
    async fn an_unknown_sku_is_never_remembered() {
        let catalogue = Changing::default();
        let cached = CachedCatalogue::new(catalogue.clone(), Duration::from_secs(10));
        assert_eq!(
            cached.prices(&skus(&["NEW"])).await.unwrap(),
            Prices::default()
        );
        catalogue.set(&[("NEW", 999, "EUR")]);
        let listed = cached.prices(&skus(&["NEW"])).await.unwrap();
        assert_eq!(price_of(&listed, "NEW"), Some(999));
    }
}
