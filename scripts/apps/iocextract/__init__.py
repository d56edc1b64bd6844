# File: __init__.py
#
# IOC Extract, an example SOAR connector that ships with luasoar.
