"""appconfig"""
