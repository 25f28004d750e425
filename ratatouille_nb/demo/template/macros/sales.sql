{# Reusable SQL snippets: every macro here is available in every model. #}

{% macro valid_sale() -%}
quantity > 0 AND unit_price > 0
{%- endmacro %}
