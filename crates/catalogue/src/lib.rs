//! The catalogue: each sku's price and currency, kept on its stock item in the inventory table
//! ([`stock::StockItem`]). The order API reads it to price an order; nothing else
//! decides what a customer is charged.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use lambda_kit::consumer::{ConfigError, FunctionEnv};
use lambda_kit::idempotency::s;

pub mod stock;

use stock::{StockItem, KEY};

/// A sku's price: minor units per unit, in `currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub unit_price_minor: i64,
    pub currency: String,
}

/// The prices a catalogue answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prices {
    /// The price of each sku asked for that the catalogue lists (an unknown sku is absent).
    pub by_sku: BTreeMap<String, Price>,
    /// Some of them were remembered from an earlier read, and may have changed since.
    pub remembered: bool,
}

impl Prices {
    /// Prices read from the catalogue just now.
    pub fn current(by_sku: BTreeMap<String, Price>) -> Self {
        Self {
            by_sku,
            remembered: false,
        }
    }
}

pub type CatalogueFuture<'a> = Pin<Box<dyn Future<Output = Result<Prices, String>> + Send + 'a>>;

/// Where prices come from.
pub trait Catalogue: Send + Sync {
    /// The price of each of `skus` the catalogue lists, possibly remembered from an earlier read.
    fn prices<'a>(&'a self, skus: &'a BTreeSet<String>) -> CatalogueFuture<'a>;

    /// The price of each of `skus` as the catalogue holds it now, past any cache.
    fn current_prices<'a>(&'a self, skus: &'a BTreeSet<String>) -> CatalogueFuture<'a> {
        self.prices(skus)
    }
}

/// The catalogue in the inventory table.
#[derive(Debug, Clone)]
pub struct DynamoCatalogue {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// Most keys one `BatchGetItem` takes.
const BATCH: usize = 100;

impl DynamoCatalogue {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }

    /// Reads `CATALOGUE_TABLE` (the inventory table).
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        Ok(Self::new(
            lambda_kit::calls::dynamodb_client(sdk),
            env.require("CATALOGUE_TABLE")?,
        ))
    }

    async fn read(&self, skus: &BTreeSet<String>) -> Result<Prices, String> {
        let mut prices = BTreeMap::new();
        let skus: Vec<&String> = skus.iter().collect();
        for chunk in skus.chunks(BATCH) {
            let keys = chunk
                .iter()
                .map(|sku| {
                    std::collections::HashMap::from([(KEY.to_owned(), s(stock::sku_key(sku)))])
                })
                .collect::<Vec<_>>();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .projection_expression("#pk, #price, #currency")
                    .expression_attribute_names("#pk", KEY)
                    .expression_attribute_names("#price", stock::UNIT_PRICE_MINOR)
                    .expression_attribute_names("#currency", stock::CURRENCY)
                    .build()
                    .map_err(|e| e.to_string())?,
            );
            // DynamoDB may leave keys unprocessed under load; ask again for those.
            while let Some(keys) = request.take() {
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
                for item in answer
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    if let Some((sku, price)) = price_of(item) {
                        prices.insert(sku, price);
                    }
                }
                request = answer
                    .unprocessed_keys()
                    .and_then(|unprocessed| unprocessed.get(&self.table))
                    .filter(|keys| !keys.keys().is_empty())
                    .cloned();
            }
        }
        Ok(Prices::current(prices))
    }
}

/// A stock item's sku and price, when it has a price.
fn price_of(item: &std::collections::HashMap<String, AttributeValue>) -> Option<(String, Price)> {
    let stock: StockItem = serde_dynamo::from_item(item.clone()).ok()?;
    let price = Price {
        unit_price_minor: stock.unit_price_minor?,
        currency: stock.currency.clone()?,
    };
    Some((stock.sku()?.to_owned(), price))
}

impl Catalogue for DynamoCatalogue {
    fn prices<'a>(&'a self, skus: &'a BTreeSet<String>) -> CatalogueFuture<'a> {
        Box::pin(self.read(skus))
    }
}

/// A catalogue held in memory (tests, benchmarks).
#[derive(Debug, Clone, Default)]
pub struct MemoryCatalogue(pub BTreeMap<String, Price>);

impl MemoryCatalogue {
    /// A catalogue of `(sku, unit price in minor units, currency)`.
    pub fn of(entries: &[(&str, i64, &str)]) -> Self {
        Self(
            entries
                .iter()
                .map(|(sku, price, currency)| {
                    let price = Price {
                        unit_price_minor: *price,
                        currency: (*currency).to_owned(),
                    };
                    ((*sku).to_owned(), price)
                })
                .collect(),
        )
    }
}

impl Catalogue for MemoryCatalogue {
    fn prices<'a>(&'a self, skus: &'a BTreeSet<String>) -> CatalogueFuture<'a> {
        let found = skus
            .iter()
            .filter_map(|sku| Some((sku.clone(), self.0.get(sku)?.clone())))
            .collect();
        Box::pin(std::future::ready(Ok(Prices::current(found))))
    }
}
