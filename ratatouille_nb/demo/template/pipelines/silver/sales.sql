-- Pipeline metadata (parsed by Ratatouille)
-- @name: silver_sales
-- @materialized: incremental
-- @unique_key: txn_id
-- @owner: data-team

SELECT
    txn_id,
    store_id,
    product_id,
    CAST(quantity AS INTEGER) AS quantity,
    CAST(unit_price AS DECIMAL(10, 2)) AS unit_price,
    CAST(quantity * unit_price AS DECIMAL(12, 2)) AS total_amount,
    payment_method,
    CAST(transaction_time AS TIMESTAMP) AS transaction_time,
    CAST(transaction_time AS DATE) AS _date,
    CAST(_ingested_at AS TIMESTAMP) AS _ingested_at
FROM {{ ref('bronze.raw_sales') }}
WHERE {{ valid_sale() }}
{% if is_incremental() %}
  AND _ingested_at > '{{ watermark("_ingested_at") }}'
{% endif %}
QUALIFY row_number() OVER (PARTITION BY txn_id ORDER BY _ingested_at DESC, transaction_time DESC) = 1
