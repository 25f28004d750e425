{# SQL-generating macros. Column lists come from the engine only when a model really runs
   (`execute`); while a project is parsed they fall back to harmless SQL. #}

{% macro generate_surrogate_key(field_list) -%}
  {%- set parts = [] -%}
  {%- for field in field_list -%}
    {%- do parts.append("coalesce(cast(" ~ field ~ " as varchar), '_dbt_utils_surrogate_key_null_')") -%}
  {%- endfor -%}
  md5({{ parts | join(" || '-' || ") }})
{%- endmacro %}

{% macro safe_divide(numerator, denominator) -%}
  ( {{ numerator }} ) / nullif( ( {{ denominator }} ), 0)
{%- endmacro %}

{% macro star(from, relation_alias=False, except=[], prefix='', suffix='', quote_identifiers=True) -%}
  {%- set columns = adapter.get_columns_in_relation(from) -%}
  {%- set lowered = except | map('lower') | list -%}
  {%- set kept = [] -%}
  {%- for col in columns if col.name | lower not in lowered -%}
    {%- do kept.append(col.name) -%}
  {%- endfor -%}
  {%- if not kept -%}
    *
  {%- else -%}
    {%- for name in kept -%}
      {%- if relation_alias %}{{ relation_alias }}.{% endif -%}
      {%- if quote_identifiers %}{{ adapter.quote(name) }}{% else %}{{ name }}{% endif -%}
      {%- if prefix or suffix %} as {{ adapter.quote(prefix ~ name ~ suffix) }}{% endif -%}
      {%- if not loop.last %}, {% endif -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}

{% macro union_relations(relations, column_override=none, include=[], exclude=[], source_column_name='_dbt_source_relation', where=none) -%}
  {%- for relation in relations %}
  (select
    {% if include -%}
      {%- for name in include %}{{ adapter.quote(name) }}{% if not loop.last %}, {% endif %}{% endfor -%}
    {%- elif exclude -%}
      * exclude ({% for name in exclude %}{{ adapter.quote(name) }}{% if not loop.last %}, {% endif %}{% endfor %})
    {%- else -%}
      *
    {%- endif -%}
    {%- if source_column_name %}, '{{ relation }}' as {{ adapter.quote(source_column_name) }}{% endif %}
  from {{ relation }}
  {%- if where %} where {{ where }}{% endif %})
  {%- if not loop.last %}
  union all by name
  {%- endif -%}
  {%- endfor %}
{%- endmacro %}

{% macro date_spine(datepart, start_date, end_date) -%}
  select cast(range as timestamp) as date_{{ datepart }}
  from range(cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp), interval 1 {{ datepart }})
{%- endmacro %}

{% macro get_column_values(table, column, order_by='count(*) desc', max_records=none, default=none, where=none) -%}
  {%- if not execute -%}
    {{ return(default if default is not none else []) }}
  {%- endif -%}
  {%- set query -%}
    select {{ column }} as value from {{ table }}
    {% if where %}where {{ where }}{% endif %}
    group by {{ column }} order by {{ order_by }}
    {% if max_records is not none %}limit {{ max_records }}{% endif %}
  {%- endset -%}
  {%- set result = run_query(query) -%}
  {{ return(result.columns[0].values() if result.rows else (default if default is not none else [])) }}
{%- endmacro %}

{% macro pivot(column, values, alias=True, agg='sum', cmp='=', prefix='', suffix='', then_value=1, else_value=0, quote_identifiers=True, distinct=False) -%}
  {%- for value in values -%}
    {{ agg }}({% if distinct %}distinct {% endif %}case when {{ column }} {{ cmp }} '{{ value | replace("'", "''") }}' then {{ then_value }} else {{ else_value }} end)
    {%- if alias %} as {% if quote_identifiers %}{{ adapter.quote(prefix ~ value ~ suffix) }}{% else %}{{ prefix ~ value ~ suffix }}{% endif %}{% endif -%}
    {%- if not loop.last %},
    {% endif -%}
  {%- endfor -%}
{%- endmacro %}
