*** Settings ***
Documentation     SiFive HiFive1 Rev B (RV32IMAC, 16 KB DTIM): LeNet-5 and DS-CNN fit with fusion and
...               equal their baselines; ResNet-8 cannot fit 16 KB and is refused cleanly (exit 3,
...               saying the lowest peak any plan reaches).
Resource          resources/msfsim.resource
Suite Setup       Require Backend    ${BACKEND}    ${PLATFORM}


*** Variables ***
${PLATFORM}     hifive1b
${BASELINES}    ${CURDIR}/baselines/hifive1b.json


*** Test Cases ***    MODEL          PLATFORM
Plan fits 16 KB and matches baseline
    [Template]    Fused Plan Should Fit And Match Baseline
    lenet5-r28     ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Outputs are bit-exact
    [Template]    Fused Plan Output Should Be Bit Exact
    lenet5-r28     ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Unicorn and QEMU agree
    [Template]    Fused Plan Backends Should Agree
    lenet5-r28     ${PLATFORM}
    dscnn-kws      ${PLATFORM}

ResNet-8 is refused cleanly
    [Documentation]    No plan within 1.5x the layer-by-layer MACs fits 16 KB: exit 3, one error line.
    ${error}=    Search Should Find No Plan    zoo:resnet8-r32    ${PLATFORM}
    ...    --max-overhead    ${MAX_OVERHEAD}    message=16,384 B
    Should Contain    ${error}    lowest peak
