"""The map pages in headless Chromium against a live server."""

import re
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.api.conftest import js_errors


def _wait(driver, cond, timeout=30):
    return WebDriverWait(driver, timeout).until(cond)


def test_supervisor_map_draws_the_grid_and_click_shows_the_cell(live_server, browser, city):
    from gridcore.grid import point_to_cell

    browser.get(live_server.url + "/")
    _wait(browser, lambda d: int(d.find_element(By.TAG_NAME, "body")
                                 .get_attribute("data-cells-drawn") or 0) > 100)
    _wait(browser, lambda d: int(d.find_element(By.TAG_NAME, "body")
                                 .get_attribute("data-streets-drawn") or 0) == 58)
    paths = browser.find_elements(By.CSS_SELECTOR, ".leaflet-overlay-pane path")
    assert len(paths) > 100
    # click the middle of the map: the panel shows the cell under that point
    map_el = browser.find_element(By.ID, "map")
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element_with_offset(map_el, 37, 23).click().perform()
    _wait(browser, lambda d: re.fullmatch(r"\d{15}", d.find_element(By.ID, "cell-code").text))
    shown = browser.find_element(By.ID, "cell-code").text
    marker = browser.execute_script(
        "var m = document.querySelector('.leaflet-interactive[stroke=\"#c00\"]');"
        "return m !== null;")
    assert marker
    info = browser.find_element(By.ID, "cell-info").text
    assert "社区" in info and "街道" in info
    import json

    lon, lat, crs = json.loads(browser.find_element(By.TAG_NAME, "body")
                               .get_attribute("data-picked"))
    assert crs == "wgs84"
    expected = city.cells.code.iloc[point_to_cell(city.cells, [lon], [lat])[0]]
    assert shown == expected
    time.sleep(0.5)
    assert js_errors(browser) == []
