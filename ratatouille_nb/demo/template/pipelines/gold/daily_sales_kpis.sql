-- @name: gold_daily_sales_kpis
-- @materialized: table
-- @owner: data-team

SELECT
    _date,
    store_id,
    SUM(total_amount) AS revenue,
    COUNT(*) AS transactions,
    CAST(AVG(total_amount) AS DECIMAL(12, 2)) AS avg_basket,
    COUNT(DISTINCT product_id) AS distinct_products
FROM {{ ref('silver_sales') }}
GROUP BY _date, store_id
